import { DomainError, err, ok, type Result } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { AuditSink } from "./audit/audit-queue";

/**
 * Tier authorisation (contract: TIERS, GRANTS AND TIERSETS).
 *
 * 1. The model: the requested one, else the tiers' model, else the default model.
 * 2. Granted tiers: the tenant's grants on that model, excluding other tenants' private tiers.
 * 3. A mode picks among granted, public, non-restricted tiers by placement
 *    (FAST = HOT; BALANCED = + WARM; DEEP = + COLD); MAX takes every granted tier,
 *    restricted and own private ones included. Explicit `tiers` instead name exactly the
 *    tiers: an unknown id or another tenant's private tier is NOT_FOUND (the two are
 *    indistinguishable on purpose), a visible tier without a grant is FORBIDDEN.
 * 4. Every tier decision is audited: ALLOW per activated tier, DENY per refused one.
 * The cost weight of a TierSet is the sum of its tiers' cost weights.
 */
export const TIER_MODES = ["FAST", "BALANCED", "DEEP", "MAX"] as const;
export type TierMode = (typeof TIER_MODES)[number];
export type Placement = "HOT" | "WARM" | "COLD" | "ARCHIVE";

const MODE_PLACEMENTS: Record<Exclude<TierMode, "MAX">, readonly Placement[]> = {
  FAST: ["HOT"],
  BALANCED: ["HOT", "WARM"],
  DEEP: ["HOT", "WARM", "COLD"],
};

export interface TierInfo {
  id: string;
  modelId: string;
  rank: number;
  placement: Placement;
  restricted: boolean;
  costWeight: number;
  ownerTenantId: string | null;
}

export interface TierSet {
  /** for explicit tiers: the smallest fixed mode whose tiers cover them */
  mode: TierMode;
  /** ordered by rank */
  tierIds: string[];
  costWeight: number;
}

export interface ResolvedTierSet extends TierSet {
  modelId: string;
  explicit: boolean;
  tiers: TierInfo[];
  /** every tier of the model granted to the tenant (input to smallerTierSets) */
  granted: TierInfo[];
}

export interface TierSetRequest {
  modelId?: string | null;
  mode?: TierMode | null;
  tierIds?: readonly string[] | null;
}

export interface TierDecisionContext {
  audit: AuditSink;
  /** audit actor, e.g. `tenant:key_…` */
  actor: string;
}

const TIER_SELECT = {
  id: true,
  modelId: true,
  rank: true,
  placement: true,
  restricted: true,
  costWeight: true,
  ownerTenantId: true,
} as const;

const byRank = (a: TierInfo, b: TierInfo) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const sumCost = (tiers: readonly TierInfo[]) => tiers.reduce((s, t) => s + t.costWeight, 0);

function modeTiers(mode: TierMode, granted: readonly TierInfo[]): TierInfo[] {
  if (mode === "MAX") return [...granted].sort(byRank);
  const placements = MODE_PLACEMENTS[mode];
  return granted
    .filter((t) => !t.restricted && t.ownerTenantId === null && placements.includes(t.placement))
    .sort(byRank);
}

/** The smallest fixed mode whose placements cover these tiers (MAX for restricted/private ones). */
export function coveringMode(tiers: readonly TierInfo[]): TierMode {
  if (tiers.some((t) => t.restricted || t.ownerTenantId !== null)) return "MAX";
  for (const mode of ["FAST", "BALANCED", "DEEP"] as const) {
    if (tiers.every((t) => MODE_PLACEMENTS[mode].includes(t.placement))) return mode;
  }
  return "MAX";
}

export async function resolveTierSet(
  db: PrismaClient,
  tenantId: string,
  request: TierSetRequest,
  ctx: TierDecisionContext,
): Promise<Result<ResolvedTierSet, DomainError>> {
  const explicitIds = request.tierIds ? [...new Set(request.tierIds)] : null;
  if (explicitIds && explicitIds.length === 0) {
    return err(new DomainError("BAD_USER_INPUT", "tiers: name at least one tier, or use a mode", { field: "tiers" }));
  }
  const visible = { OR: [{ ownerTenantId: null }, { ownerTenantId: tenantId }] };

  let modelId = request.modelId ?? null;
  let named: TierInfo[] = [];
  if (explicitIds) {
    named = (await db.tier.findMany({
      where: { id: { in: explicitIds }, ...visible },
      select: TIER_SELECT,
    })) as TierInfo[];
    const found = new Set(named.map((t) => t.id));
    const missing = explicitIds.find((id) => !found.has(id));
    if (missing !== undefined) {
      await ctx.audit.record({
        tenantId,
        actor: ctx.actor,
        action: "tier.activate",
        resource: `tier:${missing}`,
        decision: "DENY",
        reason: "NOT_FOUND",
      });
      return err(new DomainError("NOT_FOUND", `tier ${missing} not found`, { field: "tiers" }));
    }
    const models = new Set(named.map((t) => t.modelId));
    if (models.size > 1 || (modelId !== null && !models.has(modelId))) {
      return err(
        new DomainError("BAD_USER_INPUT", "tiers: every tier must belong to the requested model", { field: "tiers" }),
      );
    }
    modelId = named[0].modelId;
  }
  if (modelId === null) {
    const model = await db.model.findFirst({
      orderBy: [{ isDefault: "desc" }, { registeredAt: "asc" }],
      select: { id: true },
    });
    if (!model)
      return err(new DomainError("UNAVAILABLE", "no model is registered yet", { retryAfterMs: 5000, field: "model" }));
    modelId = model.id;
  } else if (!explicitIds) {
    const model = await db.model.findUnique({ where: { id: modelId }, select: { id: true } });
    if (!model) return err(new DomainError("NOT_FOUND", `model ${modelId} not found`, { field: "model" }));
  }

  const granted = (await db.tier.findMany({
    where: { modelId, ...visible, grants: { some: { tenantId } } },
    select: TIER_SELECT,
  })) as TierInfo[];
  granted.sort(byRank);

  let tiers: TierInfo[];
  let mode: TierMode;
  if (explicitIds) {
    const grantedIds = new Set(granted.map((t) => t.id));
    const refused = named.filter((t) => !grantedIds.has(t.id));
    if (refused.length > 0) {
      await ctx.audit.record(
        ...refused.map((t) => ({
          tenantId,
          actor: ctx.actor,
          action: "tier.activate",
          resource: `tier:${t.id}`,
          decision: "DENY" as const,
          reason: "NOT_GRANTED",
        })),
      );
      return err(
        new DomainError("FORBIDDEN", `tier ${refused[0].id} is not granted to this tenant`, {
          reason: "TIER_NOT_GRANTED",
          field: "tiers",
        }),
      );
    }
    tiers = [...named].sort(byRank);
    mode = coveringMode(tiers);
  } else {
    mode = request.mode ?? "BALANCED";
    tiers = modeTiers(mode, granted);
    if (tiers.length === 0) {
      await ctx.audit.record({
        tenantId,
        actor: ctx.actor,
        action: "tier.activate",
        resource: `tierset:${modelId}:${mode}`,
        decision: "DENY",
        reason: "NO_GRANTED_TIER",
      });
      return err(
        new DomainError("FORBIDDEN", `no tier granted to this tenant serves mode ${mode}`, {
          reason: "NO_GRANTED_TIER",
        }),
      );
    }
  }
  await ctx.audit.record(
    ...tiers.map((t) => ({
      tenantId,
      actor: ctx.actor,
      action: "tier.activate",
      resource: `tier:${t.id}`,
      decision: "ALLOW" as const,
      reason: `mode ${mode}`,
    })),
  );
  return ok({
    modelId,
    mode,
    explicit: explicitIds !== null,
    tiers,
    tierIds: tiers.map((t) => t.id),
    costWeight: sumCost(tiers),
    granted,
  });
}

/**
 * The strictly smaller TierSets DEGRADE may fall back to, largest first.
 * Modes step down MAX → DEEP → BALANCED → FAST (skipping empty or equal sets); explicit
 * tiers drop the highest rank first, one at a time.
 */
export function smallerTierSets(resolved: Pick<ResolvedTierSet, "mode" | "explicit" | "tiers" | "granted">): TierSet[] {
  const out: TierSet[] = [];
  const current = [...resolved.tiers].sort(byRank);
  if (resolved.explicit) {
    for (let n = current.length - 1; n >= 1; n--) {
      const tiers = current.slice(0, n);
      out.push({ mode: coveringMode(tiers), tierIds: tiers.map((t) => t.id), costWeight: sumCost(tiers) });
    }
    return out;
  }
  const order: TierMode[] = ["MAX", "DEEP", "BALANCED", "FAST"];
  let last = current;
  for (const mode of order.slice(order.indexOf(resolved.mode) + 1)) {
    const tiers = modeTiers(mode, resolved.granted);
    const lastIds = new Set(last.map((t) => t.id));
    const strictlySmaller = tiers.length > 0 && tiers.length < last.length && tiers.every((t) => lastIds.has(t.id));
    if (!strictlySmaller) continue;
    out.push({ mode, tierIds: tiers.map((t) => t.id), costWeight: sumCost(tiers) });
    last = tiers;
  }
  return out;
}
