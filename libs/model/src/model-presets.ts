import type { Placement } from "@lite/core";
import type { Architecture } from "@lite/manifest";

/**
 * Built-in model shapes. `tiny` keeps tests fast (well under a second to build); `default`
 * is what `npm start` serves: 4 layers, d_model 256, and a restricted cold tier of large
 * experts (~400 MB) so residency and access control have real bytes to manage.
 */
export type PresetName = "tiny" | "default";

export interface TierPreset {
  /** suffix of the tier id: `<model>.<key>` */
  key: string;
  name: string;
  placement: Placement;
  groups: number;
  expertsPerGroup: number;
  expertWidth: number;
  groupTopK: number;
  expertTopK: number;
  restricted: boolean;
}

export interface ModelPreset {
  /** mixed into every file's weight generator: change it and every weight changes */
  seed: string;
  architecture: Architecture;
  routing: { tierTopK: number; scoreFractionBits: number };
  tiers: TierPreset[];
  /** paramBudget = actual parameters × this, so the budget check has headroom but bites */
  budgetHeadroom: number;
}

const BYTE_VOCAB = { vocabSize: 258, bosToken: 256, eosToken: 257 };

export const PRESETS: Record<PresetName, ModelPreset> = {
  tiny: {
    seed: "lite-llm/tiny/v1",
    architecture: { ...BYTE_VOCAB, dModel: 32, layers: 2, heads: 2, maxContextTokens: 160, normEpsilon: 1e-5 },
    routing: { tierTopK: 2, scoreFractionBits: 16 },
    budgetHeadroom: 1.25,
    tiers: [
      {
        key: "t0",
        name: "hot",
        placement: "HOT",
        groups: 2,
        expertsPerGroup: 4,
        expertWidth: 32,
        groupTopK: 1,
        expertTopK: 2,
        restricted: false,
      },
      {
        key: "t1",
        name: "warm",
        placement: "WARM",
        groups: 2,
        expertsPerGroup: 4,
        expertWidth: 48,
        groupTopK: 1,
        expertTopK: 2,
        restricted: false,
      },
      {
        key: "t2",
        name: "cold",
        placement: "COLD",
        groups: 2,
        expertsPerGroup: 4,
        expertWidth: 64,
        groupTopK: 2,
        expertTopK: 1,
        restricted: false,
      },
      {
        key: "t3",
        name: "restricted",
        placement: "COLD",
        groups: 1,
        expertsPerGroup: 4,
        expertWidth: 64,
        groupTopK: 1,
        expertTopK: 2,
        restricted: true,
      },
    ],
  },
  default: {
    seed: "lite-llm/default/v1",
    architecture: { ...BYTE_VOCAB, dModel: 256, layers: 4, heads: 4, maxContextTokens: 8192, normEpsilon: 1e-5 },
    routing: { tierTopK: 2, scoreFractionBits: 16 },
    budgetHeadroom: 1.25,
    tiers: [
      {
        key: "t0",
        name: "hot",
        placement: "HOT",
        groups: 2,
        expertsPerGroup: 4,
        expertWidth: 256,
        groupTopK: 1,
        expertTopK: 2,
        restricted: false,
      },
      {
        key: "t1",
        name: "warm",
        placement: "WARM",
        groups: 2,
        expertsPerGroup: 8,
        expertWidth: 512,
        groupTopK: 1,
        expertTopK: 2,
        restricted: false,
      },
      {
        key: "t2",
        name: "cold",
        placement: "COLD",
        groups: 4,
        expertsPerGroup: 8,
        expertWidth: 512,
        groupTopK: 2,
        expertTopK: 2,
        restricted: false,
      },
      // 16 experts × 4 layers × 6.3 MB ≈ 403 MB: the issue asks for 300 MB – 1 GB here.
      {
        key: "t3",
        name: "restricted",
        placement: "COLD",
        groups: 4,
        expertsPerGroup: 4,
        expertWidth: 3072,
        groupTopK: 1,
        expertTopK: 2,
        restricted: true,
      },
    ],
  },
};

export function isPresetName(name: string): name is PresetName {
  return name === "tiny" || name === "default";
}

/**
 * Approximate English character frequencies, as the LM head's bias: a random model then
 * emits letter-shaped text rather than uniform punctuation. EOS is rare so sequences run
 * mostly to their length limit.
 */
export const CHAR_FREQUENCIES: Record<string, number> = {
  " ": 0.17,
  e: 0.1,
  t: 0.075,
  a: 0.065,
  o: 0.062,
  i: 0.057,
  n: 0.057,
  s: 0.053,
  h: 0.05,
  r: 0.05,
  d: 0.035,
  l: 0.033,
  u: 0.023,
  c: 0.022,
  m: 0.02,
  w: 0.02,
  f: 0.018,
  g: 0.016,
  y: 0.016,
  p: 0.015,
  b: 0.012,
  v: 0.008,
  k: 0.006,
  ".": 0.008,
  ",": 0.008,
  "\n": 0.004,
  x: 0.0015,
  j: 0.001,
  q: 0.001,
  z: 0.001,
};
export const UPPERCASE_FREQUENCY = 0.0015;
export const OTHER_PRINTABLE_FREQUENCY = 0.0002;
export const EOS_FREQUENCY = 0.0002;
