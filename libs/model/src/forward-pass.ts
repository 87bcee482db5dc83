import * as ort from "onnxruntime-node";
import type { ExpertRef } from "./expert-store";
import type { RoutedExpert } from "./hser-router";
import type { KvCache } from "./kv-cache";
import type { ModelCore } from "./model-core";
import { PREFILL_ONNX_MIN_ROWS, prefillAttentionCalls, runBounded } from "./prefill-attention";
import { addInPlace, gatherRows, rmsNormRows } from "./row-math";

/**
 * One forward pass over the rows of a decode step. Rows of all sequences are stacked; each
 * sequence contributes its whole prompt on its first step and one token afterwards.
 *   embed (ONNX) → per layer: norm (TS) → QKV (ONNX) → KV write + causal attention
 *   (a sequence's prompt: ONNX, one sequence per call, see prefill-attention.ts; decode
 *   rows: TS) → attention out (ONNX) + residual → norm (TS) → router (ONNX) → HSER (TS)
 *   → each routed expert ONCE over all its rows, whatever sequence they belong to (ONNX)
 *   → gate-weighted sum per row in fixed order (TS) + residual
 *   → final norm (TS) on each sequence's last row → LM head (ONNX).
 * Every ONNX op here was checked to be row-invariant (a row's output bits do not depend on
 * the other rows in the call: see onnx-expert.test.ts); everything that reduces across a
 * row is in TypeScript with a fixed order, except prompt attention, whose ONNX calls hold
 * one sequence each and are chosen by its prompt length alone. So a sequence's tokens are
 * the same alone or in any batch.
 */

export interface PassSequence {
  tenantId: string;
  seed: bigint;
  activeTiers: boolean[];
  kv: KvCache;
  /** token ids to feed, at positions firstPos.. */
  tokens: number[];
  firstPos: number;
  /**
   * BOS + prompt (default: every row of a first step). On a first step these rows take
   * prompt attention; rows past them (a resumed sequence's earlier output) attend row by
   * row as the decode steps that first fed them did, so their bits are the same.
   */
  promptRows?: number;
  /** filled by the pass: per layer, the distinct experts its rows used */
  experts: Set<string>[];
  expertCalls: Map<string, number>;
}

export interface PassTimings {
  onnxMs: number;
  expertRuns: number;
  rows: number;
}

export interface PassResult {
  /** [sequences × vocab] logits of each sequence's last row */
  logits: Float32Array;
  timings: PassTimings;
}

async function timed<T>(t: PassTimings, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await run();
  } finally {
    t.onnxMs += performance.now() - start;
  }
}

async function runRows(
  session: ort.InferenceSession,
  x: Float32Array,
  rows: number,
  width: number,
): Promise<{ data: Float32Array; width: number }> {
  const out = await session.run({ x: new ort.Tensor("float32", x, [rows, width]) });
  const y = out.y;
  return { data: y.data as Float32Array, width: Number(y.dims[1]) };
}

export async function forwardPass(core: ModelCore, seqs: PassSequence[]): Promise<PassResult> {
  const { arch } = core;
  const d = arch.dModel;
  const timings: PassTimings = { onnxMs: 0, expertRuns: 0, rows: 0 };
  const rowSeq: number[] = [];
  const rowPos: number[] = [];
  const lastRow: number[] = [];
  /** first row of each sequence whose prompt attention runs in ONNX (its first step), and its row count */
  const prefills: { start: number; rows: number }[] = [];
  const viaTs: boolean[] = [];
  seqs.forEach((s, si) => {
    s.kv.grow(s.firstPos + s.tokens.length);
    const promptRows = s.firstPos === 0 ? Math.min(s.promptRows ?? s.tokens.length, s.tokens.length) : 0;
    const prefill = promptRows >= PREFILL_ONNX_MIN_ROWS;
    if (prefill) prefills.push({ start: rowSeq.length, rows: promptRows });
    s.tokens.forEach((_, i) => viaTs.push(!prefill || i >= promptRows));
    s.tokens.forEach((_, i) => {
      rowSeq.push(si);
      rowPos.push(s.firstPos + i);
    });
    lastRow.push(rowSeq.length - 1);
  });
  const n = rowSeq.length;
  timings.rows = n;

  const ids = BigInt64Array.from(seqs.flatMap((s) => s.tokens.map(BigInt)));
  const positions = BigInt64Array.from(rowPos.map(BigInt));
  const emb = await timed(timings, () =>
    core.embedding.run({ ids: new ort.Tensor("int64", ids, [n]), positions: new ort.Tensor("int64", positions, [n]) }),
  );
  const x = Float32Array.from(emb.x.data as Float32Array);

  for (let l = 0; l < arch.layers; l++) {
    const dense = core.layers[l];
    const h = rmsNormRows(x, n, d, arch.normEpsilon);
    const qkv = (await timed(timings, () => runRows(dense.qkv, h, n, d))).data;
    const attn = new Float32Array(n * d);
    for (let r = 0; r < n; r++) {
      seqs[rowSeq[r]].kv.write(l, rowPos[r], qkv, r * 3 * d + d, qkv, r * 3 * d + 2 * d);
    }
    // Prompts (a sequence's first step): ONNX, one sequence per call, issued together.
    const onnxAttention =
      prefills.length === 0
        ? undefined
        : timed(timings, () =>
            runBounded(prefills.flatMap((p) => prefillAttentionCalls(core.attention, qkv, p.start, p.rows, d, attn))),
          );
    // Other rows (decode): TypeScript. All of a sequence's rows are written before any
    // attends: row p only reads positions ≤ p.
    for (let r = 0; r < n; r++)
      if (viaTs[r]) seqs[rowSeq[r]].kv.attend(l, rowPos[r], arch.heads, qkv, r * 3 * d, attn, r * d);
    await onnxAttention;
    addInPlace(x, (await timed(timings, () => runRows(dense.attnOut, attn, n, d))).data);

    const h2 = rmsNormRows(x, n, d, arch.normEpsilon);
    const routed = await timed(timings, () => runRows(dense.router, h2, n, d));
    if (routed.width < core.router.requiredWidth) {
      throw new Error(
        `router of layer ${l} has ${routed.width} outputs, the manifest needs ${core.router.requiredWidth}`,
      );
    }
    const picks: RoutedExpert[][] = [];
    const byExpert = new Map<string, { ref: ExpertRef; rows: number[]; tenants: Set<string> }>();
    for (let r = 0; r < n; r++) {
      const s = seqs[rowSeq[r]];
      const sel = core.router.route(routed.data, r * routed.width, s.activeTiers, s.seed, l);
      picks.push(sel);
      for (const p of sel) {
        const ref = core.experts[p.tier][l][p.group * core.tiers[p.tier].expertsPerGroup + p.expert];
        let entry = byExpert.get(ref.key);
        if (!entry) byExpert.set(ref.key, (entry = { ref, rows: [], tenants: new Set() }));
        entry.rows.push(r);
        entry.tenants.add(s.tenantId);
        s.experts[l].add(`${ref.tierId}/g${ref.group}/e${ref.expert}`);
        s.expertCalls.set(ref.tierId, (s.expertCalls.get(ref.tierId) ?? 0) + 1);
      }
    }
    // Each expert runs once over all its rows. Runs are issued together: onnxruntime-node
    // executes them off the JS thread, so on 2 cores two experts overlap.
    const outputs = new Map<string, { data: Float32Array; index: Map<number, number> }>();
    await timed(timings, () =>
      Promise.all(
        [...byExpert.values()].map(async (e) => {
          const lease = core.store.acquire(e.ref, e.tenants) ?? (await core.store.get(e.ref, e.tenants));
          const out = await runRows(lease.session, gatherRows(h2, e.rows, d), e.rows.length, d).finally(() =>
            lease.release(),
          );
          outputs.set(e.ref.key, { data: out.data, index: new Map(e.rows.map((r, i) => [r, i])) });
        }),
      ),
    );
    timings.expertRuns += byExpert.size;
    const acc = new Float64Array(d);
    for (let r = 0; r < n; r++) {
      acc.fill(0);
      for (const p of picks[r]) {
        const ref = core.experts[p.tier][l][p.group * core.tiers[p.tier].expertsPerGroup + p.expert];
        const out = outputs.get(ref.key)!;
        const base = out.index.get(r)! * d;
        for (let i = 0; i < d; i++) acc[i] += p.gate * out.data[base + i];
      }
      for (let i = 0; i < d; i++) x[r * d + i] += acc[i];
    }
  }

  const finalRows = rmsNormRows(gatherRows(x, lastRow, d), lastRow.length, d, arch.normEpsilon);
  const logits = (await timed(timings, () => runRows(core.lmHead, finalRows, lastRow.length, d))).data;
  return { logits, timings };
}
