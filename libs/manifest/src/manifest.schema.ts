import { z } from "zod";
import { PLACEMENTS } from "@lite/core";

/**
 * The Tiered Parameter Architecture manifest. `manifestVersion` is "MAJOR.MINOR": a reader
 * accepts its own major version at any minor (newer minors only add fields, which zod's
 * default object parsing strips), and refuses any other major.
 */
export const MANIFEST_MAJOR_VERSION = 1;
export const MANIFEST_VERSION = "1.0";

const relPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), "must be a relative path inside the model");
const posInt = z.number().int().positive();

export const ArchitectureSchema = z.object({
  vocabSize: posInt,
  dModel: posInt,
  layers: posInt,
  heads: posInt,
  maxContextTokens: posInt,
  bosToken: z.number().int().nonnegative(),
  eosToken: z.number().int().nonnegative(),
  normEpsilon: z.number().positive(),
});
export type Architecture = z.infer<typeof ArchitectureSchema>;

export const RoutingSchema = z.object({
  /** how many of the active tiers each token uses */
  tierTopK: posInt,
  /** router scores are quantised to multiples of 2^-scoreFractionBits before top-k */
  scoreFractionBits: z.number().int().min(0).max(30),
});

export const DenseLayerSchema = z.object({ qkv: relPath, attnOut: relPath, router: relPath });
export const DenseSchema = z.object({
  embedding: relPath,
  layers: z.array(DenseLayerSchema),
  lmHead: relPath,
});

export const TierSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  rank: z.number().int().nonnegative(),
  placement: z.enum(PLACEMENTS),
  groups: posInt,
  expertsPerGroup: posInt,
  expertWidth: posInt,
  routing: z.object({ groupTopK: posInt, expertTopK: posInt }),
  /** maximum expert parameters (all layers) the tier may hold */
  paramBudget: posInt,
  restricted: z.boolean(),
  /** first router output column of this tier's tier score, group scores and expert scores */
  routerColumns: z.object({
    tier: z.number().int().nonnegative(),
    groups: z.number().int().nonnegative(),
    experts: z.number().int().nonnegative(),
  }),
  /** expert file paths, indexed [layer][group * expertsPerGroup + expert] */
  experts: z.array(z.array(relPath)),
});
export type TierManifest = z.infer<typeof TierSchema>;

export const FileEntrySchema = z.object({
  path: relPath,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
});
export type FileEntry = z.infer<typeof FileEntrySchema>;

/** Tiers are parsed one by one (see manifest-reader.ts) so an unknown kind of tier can be skipped. */
export const ManifestSchema = z.object({
  manifestVersion: z.string().regex(/^\d+\.\d+$/),
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  architecture: ArchitectureSchema,
  routing: RoutingSchema,
  dense: DenseSchema,
  tiers: z.array(z.unknown()).min(1),
  files: z.array(FileEntrySchema).min(1),
});
export type ManifestEnvelope = z.infer<typeof ManifestSchema>;
export type Manifest = Omit<ManifestEnvelope, "tiers"> & { tiers: TierManifest[] };

/** Router output width: per tier one tier score, one score per group and one per expert. */
export function routerWidth(tiers: readonly Pick<TierManifest, "groups" | "expertsPerGroup">[]): number {
  return tiers.reduce((n, t) => n + 1 + t.groups + t.groups * t.expertsPerGroup, 0);
}
