import type { AttentionKernel } from "./attention-wasm";

/**
 * The row loop of a run of attention rows over the WebAssembly kernel (KvCache.attendRows),
 * shared by the JS thread and the attention helper thread (attention-helper.ts), which runs
 * these very functions from their source text: the same float64 operations in the same
 * order on either thread, so the same bits. Both functions are self-contained (they name
 * nothing outside their parameters but JS built-ins) for that reason.
 */

/** Where a run's inputs sit in the kernel's memory: [q f64 × hd][acc f64 × hd][scores f64 × n][K f32][V f32]. */
export interface KernelRun {
  /** positions held (0..n-1): the last row's position + 1 */
  n: number;
  hd: number;
  heads: number;
  /** position of the run's row 0 */
  fromPos: number;
  /** the cache's positions per block (weighValues groups 4 positions within a block) */
  bt: number;
  qPtr: number;
  accPtr: number;
  scoresPtr: number;
  /** keys, [head][position][hd] float32; values follow at vPtr, the same layout */
  kPtr: number;
  vPtr: number;
  scale: number;
}

/** The kernel memory layout of a run of n positions (16-byte aligned keys). */
export function kernelRun(n: number, hd: number, heads: number, fromPos: number, bt: number): KernelRun {
  const qPtr = 0;
  const accPtr = 8 * hd;
  const scoresPtr = 16 * hd;
  const kPtr = scoresPtr + 8 * n + 15 - ((scoresPtr + 8 * n + 15) % 16);
  const vPtr = kPtr + 4 * n * heads * hd;
  return { n, hd, heads, fromPos, bt, qPtr, accPtr, scoresPtr, kPtr, vPtr, scale: 1 / Math.sqrt(hd) };
}

/**
 * Step 2 of attend: scores[t] = exp(scores[t] − max) in position order, returning their
 * total; the n scores start at index `from` of `scores`.
 */
export function softmaxNumerators(scores: Float64Array, n: number, max: number, from = 0): number {
  let total = 0;
  for (let t = from; t < from + n; t++) {
    const e = Math.exp(scores[t] - max);
    scores[t] = e;
    total += e;
  }
  return total;
}

/**
 * Rows r0..r1-1 of the run (row r at position fromPos + r), head by head, as KvCache.attend:
 * scores and max (kernel), softmax numerators (`softmax`), weighted sum (kernel), × 1/total.
 * Row r reads q at qOff + (r − r0)·qStride and writes out at outOff + (r − r0)·outStride.
 */
export function kernelRows(
  k: AttentionKernel,
  softmax: (scores: Float64Array, n: number, max: number) => number,
  run: KernelRun,
  r0: number,
  r1: number,
  q: Float32Array,
  qOff: number,
  qStride: number,
  out: Float32Array,
  outOff: number,
  outStride: number,
): void {
  const { n, hd, heads, fromPos, bt, qPtr, accPtr, scoresPtr, kPtr, vPtr, scale } = run;
  const buf = k.memory.buffer;
  const qh = new Float64Array(buf, qPtr, hd);
  const acc = new Float64Array(buf, accPtr, hd);
  const scores = new Float64Array(buf, scoresPtr, n);
  for (let r = r0; r < r1; r++) {
    const np = fromPos + r + 1;
    const grouped = bt >= 4 ? np - (np % 4) : 0;
    for (let h = 0; h < heads; h++) {
      const qb = qOff + (r - r0) * qStride + h * hd;
      for (let i = 0; i < hd; i++) qh[i] = q[qb + i];
      const max = k.scores(kPtr + 4 * h * n * hd, qPtr, np, hd, scale, scoresPtr);
      const inv = 1 / softmax(scores, np, max);
      k.weigh(vPtr + 4 * h * n * hd, scoresPtr, np, hd, grouped, accPtr);
      const ob = outOff + (r - r0) * outStride + h * hd;
      for (let i = 0; i < hd; i++) out[ob + i] = acc[i] * inv;
    }
  }
}
