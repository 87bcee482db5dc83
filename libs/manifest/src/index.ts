/**
 * @lite/manifest — the TPA manifest without the runtime: schema, Ed25519 signatures and file
 * hashes, tier descriptions (cost weight, parameter bytes), model limits and registration.
 * No onnxruntime here, so the API process can use all of it; @lite/model builds on it.
 */
export {
  MANIFEST_MAJOR_VERSION,
  MANIFEST_VERSION,
  ArchitectureSchema,
  DenseLayerSchema,
  DenseSchema,
  FileEntrySchema,
  ManifestSchema,
  RoutingSchema,
  TierSchema,
  routerWidth,
  type Architecture,
  type FileEntry,
  type Manifest,
  type ManifestEnvelope,
  type TierManifest,
} from "./manifest.schema";
export { ManifestError, type ManifestErrorReason } from "./manifest.errors";
export {
  PUBLIC_KEY_FILE,
  SIGNATURE_FILE,
  SIGNING_KEY_FILE,
  loadOrCreateSigningKey,
  parsePublicKey,
  publicKeyPem,
  signManifest,
  verifyManifestSignature,
} from "./manifest-signing";
export { readManifest, type LoadedManifest, type ReadManifestOptions } from "./manifest-reader";
export { readVerifiedFile, readVerifiedFileAsync, sha256Hex } from "./verified-file";
export {
  PARAM_BYTES,
  activeParams,
  describeTiers,
  expertParams,
  referenceTier,
  tierParams,
  type TierDescription,
} from "./tier-description";
export { readModelLimits, type ModelLimits } from "./model-limits";
export { KV_BLOCK_TOKENS, kvBlockBytes, kvCacheBytes, promptKvBytes, type KvShape } from "./kv-bytes";
export {
  describeManifest,
  listModelNames,
  registerModels,
  registerModelsFromDir,
  type ModelDescription,
  type RegisterFromDirOptions,
  type RegistrationAudit,
  type RegistrationDb,
  type RegistrationLog,
} from "./model-registration";
