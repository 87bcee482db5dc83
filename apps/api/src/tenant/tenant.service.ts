import { badInput, DomainError, newId, notFound } from "@lite/core";
import { Prisma, decodeCursor, checkFirst, page } from "@lite/db";
import { actorOf, generateApiKey, type Principal } from "@lite/auth";
import type { ApiServices } from "../services";
import type { CreateTenantInput, QuotaInput, UpdateTenantInput } from "./tenant.input";
import { validateQuota } from "./quota";

/**
 * Tenant administration (ADMIN only; the resolver checks the role first). Every change
 * is audited; suspension invalidates the tenant's cached keys in every API process.
 */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 1000;
const NAME_MAX = 200;

function validName(name: string, field: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > NAME_MAX) throw badInput(field, `must be 1 to ${NAME_MAX} characters`);
  return trimmed;
}

function validWeight(weight: number, field: string): number {
  if (!Number.isInteger(weight) || weight < WEIGHT_MIN || weight > WEIGHT_MAX) {
    throw badInput(field, `must be an integer from ${WEIGHT_MIN} to ${WEIGHT_MAX}`);
  }
  return weight;
}

function conflictOnName(e: unknown, field: string): never {
  if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") {
    throw new DomainError("CONFLICT", `${field}: a tenant with this name exists`, { field });
  }
  throw e;
}

export async function createTenant(s: ApiServices, principal: Principal, input: CreateTenantInput) {
  const name = validName(input.name, "input.name");
  const weight = validWeight(input.weight ?? 1, "input.weight");
  const quota = validateQuota(input.quota, "input.quota");
  let tierIds: string[];
  if (input.tierIds) {
    tierIds = [...new Set(input.tierIds)];
    const tiers = await s.db.tier.findMany({
      where: { id: { in: tierIds }, ownerTenantId: null },
      select: { id: true },
    });
    const known = new Set(tiers.map((t) => t.id));
    const unknown = tierIds.find((id) => !known.has(id));
    if (unknown !== undefined) throw badInput("input.tierIds", `unknown tier ${unknown}`);
  } else {
    const tiers = await s.db.tier.findMany({ where: { ownerTenantId: null, restricted: false }, select: { id: true } });
    tierIds = tiers.map((t) => t.id);
  }
  const id = newId("tenant", s.clock.nowMs());
  const key = generateApiKey();
  const keyId = newId("apiKey", s.clock.nowMs());
  const created = await s.db
    .$transaction(async (tx) => {
      const tenant = await tx.tenant.create({ data: { id, name, weight, quota: { create: quota } } });
      if (tierIds.length > 0)
        await tx.tierGrant.createMany({ data: tierIds.map((tierId) => ({ tenantId: id, tierId })) });
      const apiKey = await tx.apiKey.create({
        data: { id: keyId, hash: key.hash, prefix: key.prefix, role: "TENANT", tenantId: id },
      });
      return { tenant, apiKey };
    })
    .catch((e) => conflictOnName(e, "input.name"));
  const actor = actorOf(principal);
  await s.audit.record(
    {
      tenantId: id,
      actor,
      action: "tenant.create",
      resource: `tenant:${id}`,
      decision: "OK",
      reason: `weight ${weight}`,
    },
    ...tierIds.map((tierId) => ({
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
  return { tenant: created.tenant, apiKey: { apiKey: created.apiKey, secret: key.secret } };
}

export async function updateTenant(s: ApiServices, principal: Principal, id: string, input: UpdateTenantInput) {
  const data: { name?: string; weight?: number } = {};
  if (input.name !== null && input.name !== undefined) data.name = validName(input.name, "input.name");
  if (input.weight !== null && input.weight !== undefined) data.weight = validWeight(input.weight, "input.weight");
  const exists = await s.db.tenant.findUnique({ where: { id }, select: { id: true } });
  if (!exists) throw notFound("tenant", id);
  const tenant = await s.db.tenant.update({ where: { id }, data }).catch((e) => conflictOnName(e, "input.name"));
  await s.audit.record({
    tenantId: id,
    actor: actorOf(principal),
    action: "tenant.update",
    resource: `tenant:${id}`,
    decision: "OK",
    reason: Object.entries(data)
      .map(([k, v]) => `${k}=${v}`)
      .join(" "),
  });
  return tenant;
}

export async function setQuota(s: ApiServices, principal: Principal, tenantId: string, input: QuotaInput) {
  const patch = validateQuota(input, "input");
  const tenant = await s.db.tenant.findUnique({ where: { id: tenantId } });
  if (!tenant) throw notFound("tenant", tenantId);
  await s.db.quota.upsert({ where: { tenantId }, create: { tenantId, ...patch }, update: patch });
  await s.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: "quota.set",
    resource: `tenant:${tenantId}`,
    decision: "OK",
    reason: Object.keys(patch).join(",") || "no change",
  });
  return tenant;
}

export async function setTierGrant(
  s: ApiServices,
  principal: Principal,
  tenantId: string,
  tierId: string,
  grant: boolean,
) {
  const tenant = await s.db.tenant.findUnique({ where: { id: tenantId } });
  if (!tenant) throw notFound("tenant", tenantId);
  const tier = await s.db.tier.findUnique({ where: { id: tierId }, select: { id: true, ownerTenantId: true } });
  if (!tier) throw notFound("tier", tierId);
  if (grant && tier.ownerTenantId !== null && tier.ownerTenantId !== tenantId) {
    throw badInput("tierId", "a private tier is granted to its owner alone");
  }
  if (grant) await s.db.tierGrant.createMany({ data: [{ tenantId, tierId }], skipDuplicates: true });
  else await s.db.tierGrant.deleteMany({ where: { tenantId, tierId } });
  await s.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: grant ? "tier.grant" : "tier.revoke",
    resource: `tier:${tierId}`,
    decision: "OK",
  });
  return tenant;
}

export async function suspendTenant(s: ApiServices, principal: Principal, id: string, suspended: boolean) {
  const exists = await s.db.tenant.findUnique({ where: { id }, select: { id: true } });
  if (!exists) throw notFound("tenant", id);
  const tenant = await s.db.tenant.update({ where: { id }, data: { suspended } });
  await s.auth.invalidate({ kind: "tenant", tenantId: id });
  await s.audit.record({
    tenantId: id,
    actor: actorOf(principal),
    action: suspended ? "tenant.suspend" : "tenant.resume",
    resource: `tenant:${id}`,
    decision: "OK",
  });
  return tenant;
}

export async function listTenants(s: ApiServices, first: number, after: string | null | undefined) {
  checkFirst(first);
  const where = after ? { id: { lt: decodeCursor(after) } } : {};
  const [rows, totalCount] = await Promise.all([
    s.db.tenant.findMany({ where, orderBy: { id: "desc" }, take: first + 1 }),
    s.db.tenant.count(),
  ]);
  return { ...page(rows, first), totalCount };
}
