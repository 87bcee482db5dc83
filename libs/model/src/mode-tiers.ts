import { MODE_PLACEMENTS, TIER_MODES, type Placement, type TierMode } from "@lite/core";

// The mode names and their placements are the vocabulary's; re-exported for the model's users.
export { TIER_MODES, type TierMode };

/**
 * The TierSet of a mode when nothing else (grants, degradation) narrows it: FAST = hot,
 * BALANCED = hot + warm, DEEP = hot + warm + cold, all among non-restricted tiers;
 * MAX = every tier, restricted included. Callers with entitlements filter the result.
 */
export function resolveModeTiers<T extends { id: string; placement: Placement; restricted: boolean; rank: number }>(
  tiers: readonly T[],
  mode: TierMode,
): string[] {
  const sorted = [...tiers].sort((a, b) => a.rank - b.rank);
  if (mode === "MAX") return sorted.map((t) => t.id);
  const placements = MODE_PLACEMENTS[mode];
  return sorted.filter((t) => !t.restricted && placements.includes(t.placement)).map((t) => t.id);
}
