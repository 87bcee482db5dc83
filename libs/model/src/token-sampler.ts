import { fnv1a64, splitmix64, u64Bytes, unitFromU64 } from "./seeded-random";

/**
 * Sampling from one row of logits, restricted to `allowed` token ids (ascending).
 * - temperature 0: argmax; equal logits are ordered by a hash of (seed, index, token), then id.
 * - temperature > 0: one uniform draw from a generator keyed by (seed, index) — not a running
 *   stream — so a replay can resume at any index and draw the same value.
 * Probabilities are summed in float64 in ascending token order: the result is a pure function
 * of the logits row.
 */

const SAMPLING_DOMAIN = 0x73616d706c65n; // "sample": keeps sampling draws apart from routing hashes

export function samplingUniform(seed: bigint, index: number): number {
  return unitFromU64(splitmix64(splitmix64(seed ^ SAMPLING_DOMAIN) ^ BigInt(index)));
}

export function sampleToken(
  logits: Float32Array,
  offset: number,
  allowed: readonly number[],
  temperature: number,
  seed: bigint,
  index: number,
): number {
  if (temperature <= 0) {
    let best = allowed[0];
    let bestHash: bigint | undefined;
    for (let i = 1; i < allowed.length; i++) {
      const t = allowed[i];
      const a = logits[offset + t];
      const b = logits[offset + best];
      if (a > b) {
        best = t;
        bestHash = undefined;
      } else if (a === b) {
        bestHash ??= fnv1a64(u64Bytes(seed, BigInt(index), BigInt(best)));
        const h = fnv1a64(u64Bytes(seed, BigInt(index), BigInt(t)));
        if (h > bestHash) {
          best = t;
          bestHash = h;
        }
      }
    }
    return best;
  }
  let max = -Infinity;
  for (const t of allowed) max = Math.max(max, logits[offset + t]);
  const weights = new Float64Array(allowed.length);
  let total = 0;
  for (let i = 0; i < allowed.length; i++) {
    weights[i] = Math.exp((logits[offset + allowed[i]] - max) / temperature);
    total += weights[i];
  }
  const target = samplingUniform(seed, index) * total;
  let acc = 0;
  for (let i = 0; i < allowed.length; i++) {
    acc += weights[i];
    if (target < acc) return allowed[i];
  }
  return allowed[allowed.length - 1];
}
