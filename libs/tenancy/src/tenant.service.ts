import { DomainError, badInput, err, newId, notFound, ok, type Result } from "@lite/core";
import { Prisma, checkFirst, decodeCursor, page } from "@lite/db";
import { actorOf, generateApiKey, type Principal } from "@lite/auth";
import { DEFAULT_QUOTA, validateQuota, type QuotaInput } from "./quota";
import { initialTierIds } from "./grant.service";
import { invalidateTenantCaches, type TenancyDb, type TenancyResources } from "./tenancy.resources";

/**
 * Tenant administration (the app checks the ADMIN role first). Every change is audited;
 * suspension drops the tenant's cached keys in every API process. Refusals (bad input, a
 * taken name, a missing tenant) are returned, not thrown.
 */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 1000;
export const NAME_MAX = 200;

export interface CreateTenantInput {
  name: string;
  /** share under weighted fair queueing, WEIGHT_MIN..WEIGHT_MAX; default 1 */
  weight?: number | null;
  /** unset fields take DEFAULT_QUOTA's */
  quota?: QuotaInput | null;
  /** public tiers to grant; default: every public, non-restricted tier */
  tierIds?: readonly string[] | null;
}

export interface UpdateTenantInput {
  name?: string | null;
  weight?: number | null;
}

function validName(name: string, field: string): Result<string, DomainError> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > NAME_MAX)
    return err(badInput(field, `must be 1 to ${NAME_MAX} characters`));
  return ok(trimmed);
}

function validWeight(weight: number, field: string): Result<number, DomainError> {
  if (!Number.isInteger(weight) || weight < WEIGHT_MIN || weight > WEIGHT_MAX) {
    return err(badInput(field, `must be an integer from ${WEIGHT_MIN} to ${WEIGHT_MAX}`));
  }
  return ok(weight);
}

/** A unique-name violation as CONFLICT; anything else is not ours to judge and is rethrown. */
function conflictOnName<T>(e: unknown, field: string): Result<T, DomainError> {
  if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") {
    return err(new DomainError("CONFLICT", `${field}: a tenant with this name exists`, { field }));
  }
  throw e;
}

/** Creates the tenant, its quota, its grants and its first TENANT key (the secret is returned once). */
export async function createTenant(r: TenancyResources, principal: Principal, input: CreateTenantInput) {
  const name = validName(input.name, "input.name");
  if (!name.ok) return name;
  const weight = validWeight(input.weight ?? 1, "input.weight");
  if (!weight.ok) return weight;
  const quota = validateQuota(input.quota, "input.quota");
  if (!quota.ok) return quota;
  const tierIds = await initialTierIds(r.db, input.tierIds);
  if (!tierIds.ok) return tierIds;
  const id = newId("tenant", r.clock.nowMs());
  const key = generateApiKey();
  const keyId = newId("apiKey", r.clock.nowMs());
  let created;
  try {
    created = await r.db.$transaction(async (tx) => {
      const tenant = await tx.tenant.create({
        data: { id, name: name.value, weight: weight.value, quota: { create: { ...DEFAULT_QUOTA, ...quota.value } } },
      });
      if (tierIds.value.length > 0)
        await tx.tierGrant.createMany({ data: tierIds.value.map((tierId) => ({ tenantId: id, tierId })) });
      const apiKey = await tx.apiKey.create({
        data: { id: keyId, hash: key.hash, prefix: key.prefix, role: "TENANT", tenantId: id },
      });
      return { tenant, apiKey };
    });
  } catch (e) {
    return conflictOnName<never>(e, "input.name");
  }
  const actor = actorOf(principal);
  await r.audit.record(
    {
      tenantId: id,
      actor,
      action: "tenant.create",
      resource: `tenant:${id}`,
      decision: "OK",
      reason: `weight ${weight.value}`,
    },
    ...tierIds.value.map((tierId) => ({
      tenantId: id,
      actor,
      action: "tier.grant",
      resource: `tier:${tierId}`,
      decision: "OK" as const,
    })),
    {
      tenantId: id,
      actor,
      action: "apikey.create",
      resource: `apikey:${keyId}`,
      decision: "OK",
      reason: "role TENANT",
    },
  );
  return ok({ tenant: created.tenant, apiKey: { apiKey: created.apiKey, secret: key.secret } });
}

export async function updateTenant(r: TenancyResources, principal: Principal, id: string, input: UpdateTenantInput) {
  const data: { name?: string; weight?: number } = {};
  if (input.name !== null && input.name !== undefined) {
    const name = validName(input.name, "input.name");
    if (!name.ok) return name;
    data.name = name.value;
  }
  if (input.weight !== null && input.weight !== undefined) {
    const weight = validWeight(input.weight, "input.weight");
    if (!weight.ok) return weight;
    data.weight = weight.value;
  }
  const exists = await r.db.tenant.findUnique({ where: { id }, select: { id: true } });
  if (!exists) return err(notFound("tenant", id));
  let tenant;
  try {
    tenant = await r.db.tenant.update({ where: { id }, data });
  } catch (e) {
    return conflictOnName<never>(e, "input.name");
  }
  await invalidateTenantCaches(r, id);
  await r.audit.record({
    tenantId: id,
    actor: actorOf(principal),
    action: "tenant.update",
    resource: `tenant:${id}`,
    decision: "OK",
    reason: Object.entries(data)
      .map(([k, v]) => `${k}=${v}`)
      .join(" "),
  });
  // After the row (the truth) and its audit: should Redis refuse, the call fails and a
  // retry writes the weight again.
  if (data.weight !== undefined) await r.scheduler.setTenantWeight(id, data.weight);
  return ok(tenant);
}

/** Suspension refuses the tenant's keys at once in every API process (their cache entries are dropped). */
export async function suspendTenant(r: TenancyResources, principal: Principal, id: string, suspended: boolean) {
  const exists = await r.db.tenant.findUnique({ where: { id }, select: { id: true } });
  if (!exists) return err(notFound("tenant", id));
  const tenant = await r.db.tenant.update({ where: { id }, data: { suspended } });
  await r.auth.invalidate({ kind: "tenant", tenantId: id });
  await r.audit.record({
    tenantId: id,
    actor: actorOf(principal),
    action: suspended ? "tenant.suspend" : "tenant.resume",
    resource: `tenant:${id}`,
    decision: "OK",
  });
  return ok(tenant);
}

export async function findTenant(db: Pick<TenancyDb, "tenant">, id: string) {
  const tenant = await db.tenant.findUnique({ where: { id } });
  return tenant ? ok(tenant) : err(notFound("tenant", id));
}

/** Newest first, with opaque cursors; a bad page size or cursor is BAD_USER_INPUT. */
export async function listTenants(db: Pick<TenancyDb, "tenant">, first: number, after: string | null | undefined) {
  let where: Prisma.TenantWhereInput;
  try {
    checkFirst(first);
    where = after ? { id: { lt: decodeCursor(after) } } : {};
  } catch (e) {
    if (e instanceof DomainError) return err(e);
    throw e;
  }
  const [rows, totalCount] = await Promise.all([
    db.tenant.findMany({ where, orderBy: { id: "desc" }, take: first + 1 }),
    db.tenant.count(),
  ]);
  return ok({ ...page(rows, first), totalCount });
}
