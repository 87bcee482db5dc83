import * as ort from "onnxruntime-node";
import type { KvCache } from "./kv-cache";
import type { ModelCore } from "./model-core";
import type { ExpertStageSequence, ResumePoint } from "./expert-stage.types";
import { expertStage } from "./pass-experts";
import { PassRows, runRows, timed, type PassTimings } from "./pass-rows";
import { PREFILL_ONNX_MIN_ROWS, prefillAttentionCalls, runBounded } from "./prefill-attention";
import { addInPlace, gatherRows, rmsNormRows } from "./row-math";

export type { PassTimings } from "./pass-rows";

/**
 * One forward pass over the rows of a decode step. Rows of all sequences are stacked; each
 * sequence contributes its whole prompt on its first step and one token afterwards.
 *   embed (ONNX) → per layer: norm (TS) → QKV (ONNX) → KV write + causal attention
 *   (a sequence's prompt: ONNX, one sequence per call, see prefill-attention.ts; decode
 *   rows: TS) → attention out (ONNX) + residual → the layer's experts (pass-experts.ts:
 *   router, HSER, each routed expert ONCE over all its rows whatever sequence they belong
 *   to, gate-weighted sum per row in fixed order) + residual
 *   → final norm (TS) on each sequence's last row → LM head (ONNX).
 * Only the last row of a sequence is sampled: in the last layer its other rows (a prompt's,
 * a replay's catch-up rows) write their K/V and leave (no decode attention, attention out,
 * router or experts: their output would only feed their own logits), when their expert
 * calls, which are billed, do not depend on their routing (unsampledRows).
 * Every ONNX op here was checked to be row-invariant (a row's output bits do not depend on
 * the other rows in the call: see onnx-expert.test.ts); everything that reduces across a
 * row is in TypeScript with a fixed order, except prompt attention, whose ONNX calls hold
 * one sequence each and are chosen by its prompt length alone. So a sequence's tokens are
 * the same alone or in any batch.
 *
 * Parking (`park`, the worker's shared step): a sequence whose rows need an expert that is
 * not HOT leaves the pass at that layer's expert stage (its load runs off the step) and
 * produces nothing; the others go on. It leaves with a resume point (`parkedAt`): its rows'
 * hidden state entering that expert stage, their positions and attention paths. Its K/V rows
 * of that layer and the layers before are written and stay. Once the load is done the batch
 * hands the point back (`resume`): the next pass embeds nothing for it and runs no layer
 * before that one; its rows join the others at that layer's expert stage and go on from
 * there. So the layers already done are not recomputed and their experts need not be HOT
 * again: a token needs only one layer's experts HOT at a time. Since neither routing (seed,
 * layer, row) nor sampling (seed, index) nor any row's bits depend on the batch (or on the
 * pass a row is computed in), it produces the token it would have unparked.
 */

export interface PassSequence extends ExpertStageSequence {
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
  /**
   * Where a parked sequence picks up (its `parkedAt` from the pass that parked it): `tokens`
   * and `firstPos` are then not fed again (its KV holds their positions already).
   */
  resume?: ResumePoint;
}

export interface PassOptions {
  /** park sequences whose expert is not HOT (default false: the pass waits for its load) */
  park?: boolean;
  /**
   * awaited after each layer but the last (DecodeBatch StepOptions.betweenLayers): another
   * pass over other sequences may run then; this pass's rows are its own locals
   */
  betweenLayers?: () => Promise<void>;
}

export interface PassResult {
  /** [sequences not parked × vocab] logits of their last rows, in the order of the sequences */
  logits: Float32Array;
  /** per sequence, its row in `logits`; -1 when it was parked */
  logitsRow: number[];
  /** per tenant, the experts whose lease named it a first use (ExpertLease.firstUseBy) */
  firstUses: Map<string, number>;
  timings: PassTimings;
}

export async function forwardPass(core: ModelCore, seqs: PassSequence[], opts: PassOptions = {}): Promise<PassResult> {
  const timings: PassTimings = { onnxMs: 0, expertRuns: 0, rows: 0 };
  let rows = await embedRows(core, seqs, timings);
  const firstUses = new Map<string, number>();
  const resuming = seqs.flatMap((s, si) => (s.resume ? [{ seq: si, ...s.resume }] : []));
  for (const r of resuming) {
    if (r.layer >= core.arch.layers) throw new Error(`forward-pass: resume at layer ${r.layer} of ${core.arch.layers}`);
    timings.rows += r.pos.length;
  }
  const last = core.arch.layers - 1;
  for (let l = 0; l <= last; l++) {
    if (rows.n > 0)
      rows = await attention(core, seqs, rows, l, timings, l === last ? unsampledRows(core, seqs, rows) : []);
    // Sequences parked at this layer's expert stage join here (their attention is done).
    rows = rows.join(resuming.filter((r) => r.layer === l));
    if (rows.n > 0) rows = await expertStage(core, seqs, rows, l, timings, { park: opts.park ?? false }, firstUses);
    if (opts.betweenLayers && l < last) await opts.betweenLayers();
  }
  const logitsRow = seqs.map(() => -1);
  if (rows.n === 0) return { logits: new Float32Array(0), logitsRow, firstUses, timings };
  const lastRows = rows.lastRows();
  lastRows.seqs.forEach((si, k) => (logitsRow[si] = k));
  const d = core.arch.dModel;
  const finalRows = rmsNormRows(gatherRows(rows.x, lastRows.rows, d), lastRows.rows.length, d, core.arch.normEpsilon);
  const logits = (await timed(timings, () => runRows(core.lmHead, finalRows, lastRows.rows.length, d))).data;
  return { logits, logitsRow, firstUses, timings };
}

/**
 * Stacks the rows of the sequences that start at layer 0 (growing each KV cache to hold
 * them) and embeds them (ONNX). A resuming sequence adds no row here, only its prompt-row
 * count (its later layers' prompt attention).
 */
async function embedRows(core: ModelCore, seqs: PassSequence[], timings: PassTimings): Promise<PassRows> {
  const rowSeq: number[] = [];
  const rowPos: number[] = [];
  const viaTs: boolean[] = [];
  const prefillRows: number[] = [];
  seqs.forEach((s, si) => {
    if (s.resume) {
      prefillRows.push(s.resume.prefillRows);
      return;
    }
    s.kv.grow(s.firstPos + s.tokens.length);
    const promptRows = s.firstPos === 0 ? Math.min(s.promptRows ?? s.tokens.length, s.tokens.length) : 0;
    const prefill = promptRows >= PREFILL_ONNX_MIN_ROWS;
    prefillRows.push(prefill ? promptRows : 0);
    s.tokens.forEach((_, i) => {
      viaTs.push(!prefill || i >= promptRows);
      rowSeq.push(si);
      rowPos.push(s.firstPos + i);
    });
  });
  const n = rowSeq.length;
  timings.rows = n;
  const d = core.arch.dModel;
  if (n === 0) return new PassRows([], [], [], prefillRows, new Float32Array(0), d);
  const ids = BigInt64Array.from(seqs.flatMap((s) => (s.resume ? [] : s.tokens.map(BigInt))));
  const positions = BigInt64Array.from(rowPos.map(BigInt));
  const emb = await timed(timings, () =>
    core.embedding.run({ ids: new ort.Tensor("int64", ids, [n]), positions: new ort.Tensor("int64", positions, [n]) }),
  );
  const x = Float32Array.from(emb.x.data as Float32Array);
  return new PassRows(rowSeq, rowPos, viaTs, prefillRows, x, d);
}

/**
 * The last layer's rows whose output nothing reads: every row of a sequence but its last
 * (only the last row's logits are sampled; the others are fed for their K/V, and the last
 * layer's K/V come from its attention input) — when the sequence's expert calls per row do
 * not depend on its routing (HserRouter.fixedCalls: a TierSet of at most tierTopK tiers).
 * Their calls are still counted (billed) as the row's routing would make them, so a
 * sequence reports the calls of an uninterrupted run; with more tiers their routing decides
 * the calls, and they run in full.
 */
function unsampledRows(core: ModelCore, seqs: PassSequence[], rows: PassRows): number[] {
  const fixed = new Map<number, Map<number, number> | undefined>();
  const out: number[] = [];
  for (let r = 0; r + 1 < rows.n; r++) {
    const si = rows.seq[r];
    if (rows.seq[r + 1] !== si) continue;
    if (!fixed.has(si)) fixed.set(si, core.router.fixedCalls(seqs[si].activeTiers));
    if (fixed.get(si)) out.push(r);
  }
  for (const r of out) {
    const s = seqs[rows.seq[r]];
    for (const [tier, calls] of fixed.get(rows.seq[r])!) {
      const id = core.tiers[tier].id;
      s.expertCalls.set(id, (s.expertCalls.get(id) ?? 0) + calls);
    }
  }
  return out;
}

/**
 * One layer's attention block over the rows, added to their hidden state. Rows in `unsampled`
 * (ascending indices; the last layer's, unsampledRows) only write their K/V and leave: the
 * rows returned are the others (all of them when it is empty). The rows that stay are
 * computed as before, bit for bit: their attention reads the K/V of every row, and the
 * ONNX ops are row-invariant.
 */
async function attention(
  core: ModelCore,
  seqs: PassSequence[],
  rows: PassRows,
  l: number,
  timings: PassTimings,
  unsampled: readonly number[],
): Promise<PassRows> {
  const { arch } = core;
  const d = arch.dModel;
  const n = rows.n;
  const dense = core.layers[l];
  const h = rmsNormRows(rows.x, n, d, arch.normEpsilon);
  const qkv = (await timed(timings, () => runRows(dense.qkv, h, n, d))).data;
  const attn = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    seqs[rows.seq[r]].kv.write(l, rows.pos[r], qkv, r * 3 * d + d, qkv, r * 3 * d + 2 * d);
  }
  const skip = new Uint8Array(n);
  for (const r of unsampled) skip[r] = 1;
  // Prompts (a sequence's first step): ONNX, one sequence per call, issued together.
  const prefills = rows.prefills();
  const onnxAttention =
    prefills.length === 0
      ? undefined
      : timed(timings, () =>
          runBounded(prefills.flatMap((p) => prefillAttentionCalls(core.attention, qkv, p.start, p.rows, d, attn))),
        );
  // Other rows (decode): TypeScript. All of a sequence's rows are written before any
  // attends: row p only reads positions ≤ p. A run of a sequence's consecutive rows (a
  // replay's catch-up) attends in one call: the WebAssembly kernel, the same bits; a long
  // run shares its rows with the attention helper thread (attention-helper.ts).
  for (let r = 0; r < n;) {
    if (!rows.viaTs[r] || skip[r]) {
      r++;
      continue;
    }
    let end = r + 1;
    while (
      end < n &&
      rows.viaTs[end] &&
      !skip[end] &&
      rows.seq[end] === rows.seq[r] &&
      rows.pos[end] === rows.pos[end - 1] + 1
    )
      end++;
    await seqs[rows.seq[r]].kv.attendRowsSplit(
      l,
      rows.pos[r],
      end - r,
      arch.heads,
      qkv,
      r * 3 * d,
      3 * d,
      attn,
      r * d,
      d,
    );
    r = end;
  }
  await onnxAttention;
  let out = rows;
  let attended: Float32Array = attn;
  if (unsampled.length > 0) {
    const keep: number[] = [];
    for (let r = 0; r < n; r++) if (!skip[r]) keep.push(r);
    out = rows.select(keep);
    attended = gatherRows(attn, keep, d);
  }
  addInPlace(out.x, (await timed(timings, () => runRows(dense.attnOut, attended, out.n, d))).data);
  return out;
}
