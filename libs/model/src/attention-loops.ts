/**
 * KvCache.attend's steps 1 and 3 in TypeScript, over a cache's blocks: where WebAssembly SIMD
 * is missing, and the reference the WebAssembly kernel's bits are checked against
 * (attention-wasm.test.ts).
 */

/** Where one head's rows sit in the blocks (the same for its keys and its values). */
export interface HeadGeometry {
  blocks: readonly Float32Array[];
  /** positions per block */
  bt: number;
  /** positions attended: 0..n-1 */
  n: number;
  nBlocks: number;
  /** floats between consecutive positions of one layout head */
  stride: number;
  /** head width */
  hd: number;
}

/**
 * Step 1: scores[p] = (q·k_p) × scale for every position, returning their max. Locals only in
 * the inner loops (V8 keeps them in registers); partial sums in a fixed interleave: still one
 * fixed order per row, so still batch-independent.
 */
export function headScores(
  g: HeadGeometry,
  kBase: number,
  qh: Float64Array,
  scale: number,
  scores: Float64Array,
): number {
  const { blocks, bt, n, nBlocks, stride, hd } = g;
  let max = -Infinity;
  let p = 0;
  for (let b = 0; b < nBlocks; b++) {
    const block = blocks[b];
    const end = Math.min(bt, n - b * bt);
    let kb = kBase;
    let j = 0;
    // Two positions per pass over q (each with its own four partial sums).
    for (; j + 2 <= end; j += 2, p += 2, kb += 2 * stride) {
      const kc = kb + stride;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let t0 = 0;
      let t1 = 0;
      let t2 = 0;
      let t3 = 0;
      for (let i = 0; i < hd; i += 4) {
        const q0 = qh[i];
        const q1 = qh[i + 1];
        const q2 = qh[i + 2];
        const q3 = qh[i + 3];
        s0 += q0 * block[kb + i];
        s1 += q1 * block[kb + i + 1];
        s2 += q2 * block[kb + i + 2];
        s3 += q3 * block[kb + i + 3];
        t0 += q0 * block[kc + i];
        t1 += q1 * block[kc + i + 1];
        t2 += q2 * block[kc + i + 2];
        t3 += q3 * block[kc + i + 3];
      }
      const s = (s0 + s1 + (s2 + s3)) * scale;
      const t = (t0 + t1 + (t2 + t3)) * scale;
      scores[p] = s;
      scores[p + 1] = t;
      if (s > max) max = s;
      if (t > max) max = t;
    }
    for (; j < end; j++, p++, kb += stride) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < hd; i += 4) {
        s0 += qh[i] * block[kb + i];
        s1 += qh[i + 1] * block[kb + i + 1];
        s2 += qh[i + 2] * block[kb + i + 2];
        s3 += qh[i + 3] * block[kb + i + 3];
      }
      const s = (s0 + s1 + (s2 + s3)) * scale;
      scores[p] = s;
      if (s > max) max = s;
    }
  }
  return max;
}

/** Step 3: acc = Σ weights[p] · v_p, four positions per pass: acc += (w0·v0 + w1·v1) + (w2·v2 + w3·v3). */
export function weighValues(g: HeadGeometry, vBase: number, weights: Float64Array, acc: Float64Array): void {
  const { blocks, bt, n, nBlocks, stride, hd } = g;
  for (let i = 0; i < hd; i++) acc[i] = 0;
  let p = 0;
  for (let b = 0; b < nBlocks; b++) {
    const block = blocks[b];
    const end = Math.min(bt, n - b * bt);
    let vb = vBase;
    let j = 0;
    for (; j + 4 <= end; j += 4, p += 4, vb += 4 * stride) {
      const w0 = weights[p];
      const w1 = weights[p + 1];
      const w2 = weights[p + 2];
      const w3 = weights[p + 3];
      for (let i = 0; i < hd; i++) {
        const o = vb + i;
        acc[i] += w0 * block[o] + w1 * block[o + stride] + (w2 * block[o + 2 * stride] + w3 * block[o + 3 * stride]);
      }
    }
    for (; j < end; j++, p++, vb += stride) {
      const w = weights[p];
      for (let i = 0; i < hd; i++) acc[i] += w * block[vb + i];
    }
  }
}
