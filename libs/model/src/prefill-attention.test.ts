/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as ort from "onnxruntime-node";
import { KvCache } from "./kv-cache";
import { buildAttentionModel } from "./onnx-builder";
import { prefillAttention } from "./prefill-attention";
import { Sfc32 } from "./seeded-random";

/**
 * Prompt attention runs as an ONNX graph per sequence (prefill-attention.ts). It must match
 * the TypeScript decode path (KvCache.attend, float64) to float32 precision, and a given
 * prompt must give the same bits whatever else runs: thread count, other calls in flight,
 * other rows around it in the step's arrays.
 */

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function randomQkv(seed: number, rows: number, d: number): Float32Array {
  return new Sfc32(seed).fillUniform(new Float32Array(rows * 3 * d), 2.5);
}

/** Row-by-row attention of the TypeScript decode path over the same q, k, v. */
function reference(qkv: Float32Array, rows: number, d: number, heads: number, layoutHeads: number): Float32Array {
  const kv = new KvCache(1, d, 16, layoutHeads);
  kv.grow(rows);
  for (let r = 0; r < rows; r++) kv.write(0, r, qkv, r * 3 * d + d, qkv, r * 3 * d + 2 * d);
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) kv.attend(0, r, heads, qkv, r * 3 * d, out, r * d);
  return out;
}

describe("prefill attention (ONNX)", () => {
  it.each([
    [32, 2, 45, [7, 16, 256]],
    [256, 4, 300, [64, 256]],
  ])(
    "matches the TypeScript decode path (d %i, %i heads, %i rows) for any chunk size",
    async (d, heads, rows, chunks) => {
      const session = await ort.InferenceSession.create(buildAttentionModel(d, heads), { intraOpNumThreads: 1 });
      try {
        const qkv = randomQkv(d + rows, rows, d);
        const expected = reference(qkv, rows, d, heads, heads);
        for (const chunk of chunks) {
          const out = new Float32Array(rows * d);
          await prefillAttention(session, qkv, 0, rows, d, out, chunk);
          let worst = 0;
          for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - expected[i]));
          expect(worst).toBeLessThan(2e-5);
        }
      } finally {
        await session.release();
      }
    },
  );

  it("the KV layout (head-major or not) does not change the decode path's bits", () => {
    const d = 64;
    const rows = 40;
    const qkv = randomQkv(11, rows, d);
    expect(bits(reference(qkv, rows, d, 4, 4)).equals(bits(reference(qkv, rows, d, 4, 1)))).toBe(true);
    expect(bits(reference(qkv, rows, d, 4, 2)).equals(bits(reference(qkv, rows, d, 4, 1)))).toBe(true);
  });

  it("a prompt's output bits do not depend on threads, concurrent calls, or its place in the step's rows", async () => {
    const d = 256;
    const heads = 4;
    const rows = 530; // three chunks of 256, the last partial
    const qkv = randomQkv(5, rows, d);
    const results: Float32Array[] = [];
    for (const threads of [1, 2]) {
      const session = await ort.InferenceSession.create(buildAttentionModel(d, heads), { intraOpNumThreads: threads });
      try {
        const alone = new Float32Array(rows * d);
        await prefillAttention(session, qkv, 0, rows, d, alone);
        results.push(alone);
        // The same prompt stacked after another sequence's 77 rows, with that one's prefill in flight.
        const other = randomQkv(6, 77, d);
        const stacked = new Float32Array((77 + rows) * 3 * d);
        stacked.set(other, 0);
        stacked.set(qkv, 77 * 3 * d);
        const out = new Float32Array((77 + rows) * d);
        await Promise.all([
          prefillAttention(session, stacked, 0, 77, d, out),
          prefillAttention(session, stacked, 77, rows, d, out),
        ]);
        results.push(out.subarray(77 * d));
      } finally {
        await session.release();
      }
    }
    for (const r of results.slice(1)) expect(bits(r).equals(bits(results[0]))).toBe(true);
  });

  it("the graph is built deterministically", () => {
    expect(buildAttentionModel(256, 4).equals(buildAttentionModel(256, 4))).toBe(true);
  });
});
