import { ACTIVE_STATUSES, badInput, err, notFound, ok, type DomainError, type Result } from "@lite/core";
import type { Prisma } from "@lite/db";
import { actorOf, type Principal } from "@lite/auth";
import { invalidateTenantCaches, type TenancyDb, type TenancyResources } from "./tenancy.resources";

/**
 * Tier grants: which tiers a tenant may activate. Public tiers are granted by an operator;
 * a private tier (ownerTenantId set) is granted to its owner alone. What a caller may see
 * of the catalog follows from grants: operators see every tier, a tenant its granted public
 * tiers and its own private ones.
 */
const TIER_ORDER: Prisma.TierOrderByWithRelationInput[] = [{ modelId: "asc" }, { rank: "asc" }, { id: "asc" }];

/**
 * The tiers a new tenant starts with: the named public tiers (each must exist), or by
 * default every public, non-restricted tier.
 */
export async function initialTierIds(
  db: Pick<TenancyDb, "tier">,
  requested: readonly string[] | null | undefined,
): Promise<Result<string[], DomainError>> {
  if (!requested) {
    const tiers = await db.tier.findMany({ where: { ownerTenantId: null, restricted: false }, select: { id: true } });
    return ok(tiers.map((t) => t.id));
  }
  const tierIds = [...new Set(requested)];
  const tiers = await db.tier.findMany({ where: { id: { in: tierIds }, ownerTenantId: null }, select: { id: true } });
  const known = new Set(tiers.map((t) => t.id));
  const unknown = tierIds.find((id) => !known.has(id));
  if (unknown !== undefined) return err(badInput("input.tierIds", `unknown tier ${unknown}`));
  return ok(tierIds);
}

/** Grants (grant = true, idempotent) or revokes a tier; audited. */
export async function setTierGrant(
  r: TenancyResources,
  principal: Principal,
  tenantId: string,
  tierId: string,
  grant: boolean,
) {
  const tenant = await r.db.tenant.findUnique({ where: { id: tenantId } });
  if (!tenant) return err(notFound("tenant", tenantId));
  const tier = await r.db.tier.findUnique({ where: { id: tierId }, select: { id: true, ownerTenantId: true } });
  if (!tier) return err(notFound("tier", tierId));
  if (grant && tier.ownerTenantId !== null && tier.ownerTenantId !== tenantId) {
    return err(badInput("tierId", "a private tier is granted to its owner alone"));
  }
  if (grant) await r.db.tierGrant.createMany({ data: [{ tenantId, tierId }], skipDuplicates: true });
  else await r.db.tierGrant.deleteMany({ where: { tenantId, tierId } });
  await invalidateTenantCaches(r, tenantId);
  await r.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: grant ? "tier.grant" : "tier.revoke",
    resource: `tier:${tierId}`,
    decision: "OK",
  });
  if (!grant) await stopLiveCompletions(r, tenantId, tierId);
  return ok(tenant);
}

/**
 * After a revoke: flags the tenant's live completions whose TierSet holds the tier. A
 * running one stops at its next decode step (ending CANCELLED); a queued one is ended
 * FAILED at its start by the worker's grant check (libs/engine), which comes before the
 * flag. Flagging QUEUED rows too covers a job whose start check ran just before the delete.
 * No live completion: no Redis call. Should Redis refuse, the call fails after the grant is
 * gone and audited (queued jobs are still refused at start); a retry flags them.
 */
async function stopLiveCompletions(r: TenancyResources, tenantId: string, tierId: string): Promise<void> {
  const live = await r.db.completion.findMany({
    where: { tenantId, status: { in: [...ACTIVE_STATUSES] }, tierSet: { has: tierId } },
    select: { id: true },
  });
  await r.scheduler.flagCancelled(
    tenantId,
    live.map((c) => c.id),
  );
}

/** Tiers a tenant may activate: granted public ones and granted own private ones. */
export function grantedTiers(db: Pick<TenancyDb, "tier">, tenantId: string) {
  return db.tier.findMany({
    where: { grants: { some: { tenantId } }, OR: [{ ownerTenantId: null }, { ownerTenantId: tenantId }] },
    orderBy: TIER_ORDER,
  });
}

/** Tiers visible within `scope` (a tenant id, or null for operators, who see all). */
export function visibleTiersWhere(scope: string | null): Prisma.TierWhereInput {
  if (scope === null) return {};
  return { OR: [{ ownerTenantId: scope }, { ownerTenantId: null, grants: { some: { tenantId: scope } } }] };
}

/** The catalog's tiers a caller may see, optionally of one model. */
export function listVisibleTiers(db: Pick<TenancyDb, "tier">, scope: string | null, modelId?: string) {
  return db.tier.findMany({
    where: { ...(modelId !== undefined ? { modelId } : {}), ...visibleTiersWhere(scope) },
    orderBy: TIER_ORDER,
  });
}

/** Registered models, the default first. */
export function listModels(db: Pick<TenancyDb, "model">) {
  return db.model.findMany({ orderBy: [{ isDefault: "desc" }, { name: "asc" }] });
}
