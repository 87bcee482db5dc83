import type { Placement } from "@lite/core";
import type { Architecture, Manifest, TierManifest } from "./manifest.schema";

/**
 * What the rest of the system knows of a tier, derived once from the manifest: the API
 * registers it as a Tier row (paramBytes, costWeight), admission and fair scheduling charge
 * tokens × costWeight, the model runtime routes with it.
 */
export interface TierDescription {
  id: string;
  name: string;
  rank: number;
  placement: Placement;
  groups: number;
  expertsPerGroup: number;
  expertWidth: number;
  /** expert parameter bytes across all layers (float32) */
  paramBytes: bigint;
  restricted: boolean;
  /** active expert parameters per token relative to the hot tier's (the hot tier is 1) */
  costWeight: number;
}

/** Bytes per stored parameter: experts are float32. */
export const PARAM_BYTES = 4n;

/** Parameters of one expert: W1, b1, W2, b2. */
export function expertParams(dModel: number, width: number): number {
  return 2 * dModel * width + width + dModel;
}

/** Expert parameters a tier holds across all layers (what its paramBudget bounds). */
export function tierParams(
  arch: Architecture,
  tier: Pick<TierManifest, "groups" | "expertsPerGroup" | "expertWidth">,
): number {
  return arch.layers * tier.groups * tier.expertsPerGroup * expertParams(arch.dModel, tier.expertWidth);
}

/** Expert parameters one token activates in one layer of a tier: groupTopK × expertTopK experts. */
export function activeParams(arch: Architecture, tier: Pick<TierManifest, "routing" | "expertWidth">): number {
  return tier.routing.groupTopK * tier.routing.expertTopK * expertParams(arch.dModel, tier.expertWidth);
}

/** The tier cost weights are relative to: the HOT one, else the lowest rank. */
export function referenceTier(tiers: readonly TierManifest[]): TierManifest {
  return tiers.find((t) => t.placement === "HOT") ?? [...tiers].sort((a, b) => a.rank - b.rank)[0];
}

/** Every tier of a (verified) manifest, in manifest order. */
export function describeTiers(m: Pick<Manifest, "architecture" | "tiers">): TierDescription[] {
  const arch = m.architecture;
  const hotActive = activeParams(arch, referenceTier(m.tiers));
  return m.tiers.map((t) => ({
    id: t.id,
    name: t.name,
    rank: t.rank,
    placement: t.placement,
    groups: t.groups,
    expertsPerGroup: t.expertsPerGroup,
    expertWidth: t.expertWidth,
    paramBytes: BigInt(tierParams(arch, t)) * PARAM_BYTES,
    restricted: t.restricted,
    costWeight: activeParams(arch, t) / hotActive,
  }));
}
