import * as ort from "onnxruntime-node";

/**
 * Causal attention over a sequence's prompt, in ONNX (see buildAttentionModel), instead of
 * row by row in TypeScript: O(n²) multiply-adds that MLAS does ~50× faster than a JS loop.
 *
 * Determinism: a sequence takes this path on its first step (every prompt row at once,
 * positions 0..n-1) and never otherwise. The calls made — which rows, which keys, in which
 * chunk — are a function of the prompt length n alone: query rows in chunks of
 * `PREFILL_CHUNK_ROWS` from position 0, each chunk over keys 0..(chunk end - 1). No other
 * sequence's rows ever share a call. So the same prompt gives the same calls with the same
 * inputs whatever the batch, whenever it joins, in any process, and on a replay from
 * scratch; onnxruntime on the CPU provider computes equal calls to equal bits (MLAS splits
 * GEMMs and Softmax over rows and columns, never the reduction, with 1 or 2 threads — see
 * onnx-expert.test.ts). Decode rows (one per later step) stay in TypeScript (KvCache.attend).
 */

/** query rows per ONNX call: bounds the [heads × chunk × keys] score tensors (32 MB at 8192 keys, 4 heads) */
export const PREFILL_CHUNK_ROWS = 256;
/** a first step with at least this many rows (BOS + prompt) uses the ONNX path */
export const PREFILL_ONNX_MIN_ROWS = 2;
/** additive mask for future keys: exp of it underflows to 0 in float32 */
const MASKED = -1e30;

/** ONNX calls in flight at once (bounds memory: each holds [heads × chunk × keys] scores) */
export const PREFILL_CONCURRENCY = 2;

/**
 * The calls computing attention of rows [rowStart, rowStart + rows) of `qkv` (width 3d:
 * q | k | v), which hold a sequence's positions 0..rows-1, into the same rows of `out`
 * (width d): one per chunk of query rows. Nothing is allocated until a call starts; the
 * sequence's packed keys and values are dropped when its last call ends.
 */
export function prefillAttentionCalls(
  session: ort.InferenceSession,
  qkv: Float32Array,
  rowStart: number,
  rows: number,
  d: number,
  out: Float32Array,
  chunkRows = PREFILL_CHUNK_ROWS,
): (() => Promise<void>)[] {
  let packed: { k: Float32Array; v: Float32Array } | undefined;
  let pending = Math.ceil(rows / chunkRows);
  const pack = () => {
    if (packed) return packed;
    const k = new Float32Array(rows * d);
    const v = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const src = (rowStart + r) * 3 * d;
      k.set(qkv.subarray(src + d, src + 2 * d), r * d);
      v.set(qkv.subarray(src + 2 * d, src + 3 * d), r * d);
    }
    return (packed = { k, v });
  };
  const calls: (() => Promise<void>)[] = [];
  for (let c0 = 0; c0 < rows; c0 += chunkRows) {
    const c1 = Math.min(rows, c0 + chunkRows);
    calls.push(async () => {
      const { k, v } = pack();
      const c = c1 - c0;
      const q = new Float32Array(c * d);
      for (let i = 0; i < c; i++) {
        const src = (rowStart + c0 + i) * 3 * d;
        q.set(qkv.subarray(src, src + d), i * d);
      }
      const mask = new Float32Array(c * c1);
      for (let i = 0; i < c; i++) mask.fill(MASKED, i * c1 + c0 + i + 1, (i + 1) * c1);
      // k and v views start at offset 0 of their buffers: no copy, no offset for onnxruntime to mishandle.
      const res = await session.run({
        q: new ort.Tensor("float32", q, [c, d]),
        k: new ort.Tensor("float32", k.subarray(0, c1 * d), [c1, d]),
        v: new ort.Tensor("float32", v.subarray(0, c1 * d), [c1, d]),
        mask: new ort.Tensor("float32", mask, [c, c1]),
      });
      out.set(res.y.data as Float32Array, (rowStart + c0) * d);
      if (--pending === 0) packed = undefined;
    });
  }
  return calls;
}

/** Runs calls with at most `limit` in flight. Calls write disjoint rows, so order does not matter. */
export async function runBounded(calls: (() => Promise<void>)[], limit = PREFILL_CONCURRENCY): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < calls.length) await calls[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, calls.length) }, worker));
}

/** Attention of one sequence's prompt rows (see prefillAttentionCalls). */
export async function prefillAttention(
  session: ort.InferenceSession,
  qkv: Float32Array,
  rowStart: number,
  rows: number,
  d: number,
  out: Float32Array,
  chunkRows = PREFILL_CHUNK_ROWS,
): Promise<void> {
  await runBounded(prefillAttentionCalls(session, qkv, rowStart, rows, d, out, chunkRows));
}
