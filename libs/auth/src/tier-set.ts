import {
  DEFAULT_TIER_MODE,
  DomainError,
  MODE_PLACEMENTS,
  TIER_MODES,
  err,
  ok,
  type Placement,
  type TtlCache,
  type Result,
  type TierMode,
} from "@lite/core";
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
  /** per-process caches of the reads (the API's; writers invalidate them): none = read every time */
  cache?: TierSetCache;
}

/**
 * What a resolution reads that changes rarely: a tenant's granted tiers of a model (keyed
 * `<tenantId>|<modelId>`; grantTier, revokeTier and tenant changes invalidate the tenant's
 * keys) and the default model's id (key "default"; models are registered at start-up).
 */
export interface TierSetCache {
  granted: TtlCache<TierInfo[]>;
  defaultModel: TtlCache<string | null>;
}

/** The key prefix of a tenant's entries in TierSetCache.granted. */
export const grantedKeyPrefix = (tenantId: string) => `${tenantId}|`;

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
  for (const mode of TIER_MODES) {
    if (mode !== "MAX" && tiers.every((t) => MODE_PLACEMENTS[mode].includes(t.placement))) return mode;
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
  const d: Decider = { db, tenantId, ctx };
  let named: TierInfo[] = [];
  let modelId = request.modelId ?? null;
  if (explicitIds) {
    const found = await findNamedTiers(d, explicitIds, modelId);
    if (!found.ok) return found;
    named = found.value;
    modelId = named[0].modelId;
  }
  const model = await resolveModel(db, modelId, explicitIds !== null, ctx.cache);
  if (!model.ok) return model;
  const loadGranted = async () => {
    const tiers = (await db.tier.findMany({
      where: { modelId: model.value, ...visibleTo(tenantId), grants: { some: { tenantId } } },
      select: TIER_SELECT,
    })) as TierInfo[];
    return tiers.sort(byRank);
  };
  const granted = ctx.cache
    ? await ctx.cache.granted.get(`${grantedKeyPrefix(tenantId)}${model.value}`, loadGranted)
    : await loadGranted();

  const chosen = explicitIds
    ? await requireGranted(d, named, granted)
    : await grantedModeTiers(d, request.mode ?? DEFAULT_TIER_MODE, granted, model.value);
  if (!chosen.ok) return chosen;
  const { tiers, mode } = chosen.value;
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
    modelId: model.value,
    mode,
    explicit: explicitIds !== null,
    tiers,
    tierIds: tiers.map((t) => t.id),
    costWeight: sumCost(tiers),
    granted,
  });
}

/** What every step of one resolution shares. */
interface Decider {
  db: PrismaClient;
  tenantId: string;
  ctx: TierDecisionContext;
}

/** Tiers a tenant may see: public ones and its own private ones. */
const visibleTo = (tenantId: string) => ({ OR: [{ ownerTenantId: null }, { ownerTenantId: tenantId }] });

async function denyTier(d: Decider, resource: string, reason: string): Promise<void> {
  await d.ctx.audit.record({
    tenantId: d.tenantId,
    actor: d.ctx.actor,
    action: "tier.activate",
    resource,
    decision: "DENY",
    reason,
  });
}

/**
 * Step 1 for explicit tiers: every named tier must be visible (else NOT_FOUND, audited) and
 * all must belong to one model, the requested one when a model is named.
 */
async function findNamedTiers(
  d: Decider,
  ids: readonly string[],
  modelId: string | null,
): Promise<Result<TierInfo[], DomainError>> {
  const named = (await d.db.tier.findMany({
    where: { id: { in: [...ids] }, ...visibleTo(d.tenantId) },
    select: TIER_SELECT,
  })) as TierInfo[];
  const found = new Set(named.map((t) => t.id));
  const missing = ids.find((id) => !found.has(id));
  if (missing !== undefined) {
    await denyTier(d, `tier:${missing}`, "NOT_FOUND");
    return err(new DomainError("NOT_FOUND", `tier ${missing} not found`, { field: "tiers" }));
  }
  const models = new Set(named.map((t) => t.modelId));
  if (models.size > 1 || (modelId !== null && !models.has(modelId))) {
    return err(
      new DomainError("BAD_USER_INPUT", "tiers: every tier must belong to the requested model", { field: "tiers" }),
    );
  }
  return ok(named);
}

/**
 * Step 1: the model. None named: the default model (else the oldest registered). A model
 * named without tiers must exist; one implied by explicit tiers was checked with them.
 */
async function resolveModel(
  db: PrismaClient,
  modelId: string | null,
  fromTiers: boolean,
  cache?: TierSetCache,
): Promise<Result<string, DomainError>> {
  if (modelId === null) {
    const load = async () =>
      (
        await db.model.findFirst({
          orderBy: [{ isDefault: "desc" }, { registeredAt: "asc" }],
          select: { id: true },
        })
      )?.id ?? null;
    const id = cache ? await cache.defaultModel.get("default", load) : await load();
    if (id === null) {
      cache?.defaultModel.invalidate(); // "none yet" is not kept: the first registration is seen at once
      return err(new DomainError("UNAVAILABLE", "no model is registered yet", { retryAfterMs: 5000, field: "model" }));
    }
    return ok(id);
  }
  if (!fromTiers) {
    const model = await db.model.findUnique({ where: { id: modelId }, select: { id: true } });
    if (!model) return err(new DomainError("NOT_FOUND", `model ${modelId} not found`, { field: "model" }));
  }
  return ok(modelId);
}

interface ChosenTiers {
  tiers: TierInfo[];
  mode: TierMode;
}

/** Step 3 for explicit tiers: every named tier must be granted (each refusal audited). */
async function requireGranted(
  d: Decider,
  named: readonly TierInfo[],
  granted: readonly TierInfo[],
): Promise<Result<ChosenTiers, DomainError>> {
  const grantedIds = new Set(granted.map((t) => t.id));
  const refused = named.filter((t) => !grantedIds.has(t.id));
  if (refused.length > 0) {
    await d.ctx.audit.record(
      ...refused.map((t) => ({
        tenantId: d.tenantId,
        actor: d.ctx.actor,
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
  const tiers = [...named].sort(byRank);
  return ok({ tiers, mode: coveringMode(tiers) });
}

/** Step 3 for a mode: its tiers among the granted ones; none is FORBIDDEN (audited). */
async function grantedModeTiers(
  d: Decider,
  mode: TierMode,
  granted: readonly TierInfo[],
  modelId: string,
): Promise<Result<ChosenTiers, DomainError>> {
  const tiers = modeTiers(mode, granted);
  if (tiers.length === 0) {
    await denyTier(d, `tierset:${modelId}:${mode}`, "NO_GRANTED_TIER");
    return err(
      new DomainError("FORBIDDEN", `no tier granted to this tenant serves mode ${mode}`, {
        reason: "NO_GRANTED_TIER",
      }),
    );
  }
  return ok({ tiers, mode });
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
  const order = [...TIER_MODES].reverse(); // largest first
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
