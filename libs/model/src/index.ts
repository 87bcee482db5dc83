/**
 * @lite/model — the data plane's model: the synthetic model builder, ONNX sessions, HSER
 * routing, KV cache, sampling and the batched decode loop. The manifest (schema, signatures,
 * hashes, tier descriptions) is @lite/manifest's; this library builds on it.
 */
export { loadModel, type ModelRuntime, type ModelRuntimeOptions, type TierInfo } from "./model-runtime";
export { ensureModel, type EnsureModelOptions } from "./ensure-model";
export { buildModel, type BuildModelOptions, type BuildModelResult } from "./model-builder";
export { PRESETS, isPresetName, type ModelPreset, type PresetName, type TierPreset } from "./model-presets";
export type { DecodeBatch, SequenceSpec, SequenceWait, StepOptions, StepOutput, StepTimings } from "./decode-batch";
export {
  VerifiedFileExpertStore,
  type ExpertLease,
  type ExpertRef,
  type ExpertStore,
  type NeverHotTogether,
  type PrefetchRequest,
  type ExpertStoreContext,
} from "./expert-store";
export { createExpertSession, type ExpertSession } from "./expert-session";
export { deriveRoutingSeed } from "./routing-seed";
export { resolveModeTiers, TIER_MODES, type TierMode } from "./mode-tiers";
export type { Tokenizer } from "./byte-tokenizer";
export { KvCache } from "./kv-cache";
export { KvLedger, type KvLedgerOptions, type KvMember, type KvPlan, type KvQuotaSource } from "./kv-ledger";
export { HserRouter, type RoutedExpert, type RouterTier } from "./hser-router";
export { sampleToken } from "./token-sampler";
