import type { ModelRuntime } from "@lite/model";

/**
 * The bytes one token may need HOT at once in the worst case: per MoE layer, the router
 * keeps `groupTopK × expertTopK` experts in each of `tierTopK` tiers (the largest such
 * counts), across every layer, each as large as the model's largest expert file. A parked
 * sequence resumes only when all of its token's experts are HOT, so a capacity below this
 * could let the loads of one token evict each other forever.
 */
export function tokenWorkingSetBytes(model: Pick<ModelRuntime, "manifest" | "expertRefs">): number {
  const m = model.manifest;
  const perTier = m.tiers.map((t) => t.routing.groupTopK * t.routing.expertTopK).sort((a, b) => b - a);
  const perLayer = perTier.slice(0, m.routing.tierTopK).reduce((sum, n) => sum + n, 0);
  const largest = Math.max(
    0,
    ...m.tiers.flatMap((t) => model.expertRefs(t.id).flatMap((layer) => layer.map((ref) => ref.file.bytes))),
  );
  return m.architecture.layers * perLayer * largest;
}

/** Every expert file's bytes across tiers and layers: what holding the whole model HOT takes. */
export function totalExpertBytes(model: Pick<ModelRuntime, "manifest" | "expertRefs">): number {
  return model.manifest.tiers
    .flatMap((t) => model.expertRefs(t.id).flatMap((layer) => layer.map((ref) => ref.file.bytes)))
    .reduce((sum, b) => sum + b, 0);
}
