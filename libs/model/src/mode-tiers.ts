import type { Placement } from "./manifest.schema";

export type TierMode = "FAST" | "BALANCED" | "DEEP" | "MAX";
export const TIER_MODES: readonly TierMode[] = ["FAST", "BALANCED", "DEEP", "MAX"];

const MODE_PLACEMENTS: Record<Exclude<TierMode, "MAX">, readonly Placement[]> = {
  FAST: ["HOT"],
  BALANCED: ["HOT", "WARM"],
  DEEP: ["HOT", "WARM", "COLD"],
};

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
