/**
 * KV-cache bytes from a model's shape: the one computation the worker's KV cache
 * (libs/model kv-cache.ts) charges a tenant with and the API's admission checks a prompt
 * against (libs/completions), so both count the same bytes.
 *
 * A sequence's KV cache is held in blocks of `blockTokens` positions; a block holds, for
 * every layer, the key row and the value row (dModel float32 each) of each of its positions.
 * So:
 *   blockBytes = blockTokens × layers × 2 (K and V) × dModel × 4 bytes
 *   bytes(positions) = ceil(positions ÷ blockTokens) × blockBytes
 * A sequence holds 1 (BOS) + prompt + fed output positions; its first step holds BOS + prompt.
 */

/** positions per KV block, the worker's default (ModelRuntimeOptions.kvBlockTokens) */
export const KV_BLOCK_TOKENS = 16;

/** float32 */
const KV_FLOAT_BYTES = 4;

/** The parts of a model's architecture its KV bytes depend on. */
export interface KvShape {
  layers: number;
  dModel: number;
}

export function kvBlockBytes(shape: KvShape, blockTokens = KV_BLOCK_TOKENS): number {
  return blockTokens * shape.layers * 2 * shape.dModel * KV_FLOAT_BYTES;
}

/** Bytes of KV cache holding `positions` positions (whole blocks). */
export function kvCacheBytes(shape: KvShape, positions: number, blockTokens = KV_BLOCK_TOKENS): number {
  if (!Number.isInteger(positions) || positions < 0)
    throw new Error(`kv bytes: positions must be ≥ 0, got ${positions}`);
  return Math.ceil(positions / blockTokens) * kvBlockBytes(shape, blockTokens);
}

/**
 * KV bytes a prompt of `promptTokens` tokens holds after its first step (BOS + the prompt):
 * the least a sequence of it ever holds while it runs. Over the tenant's `kvCacheBytes` it
 * can never run, so admission refuses it.
 */
export function promptKvBytes(shape: KvShape, promptTokens: number, blockTokens = KV_BLOCK_TOKENS): number {
  return kvCacheBytes(shape, 1 + promptTokens, blockTokens);
}
