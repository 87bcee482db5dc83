/**
 * Row-wise reductions done in TypeScript rather than ONNX, so their order is fixed:
 * each row is reduced left to right in float64 and rounded to float32 once. A row's
 * result then depends on that row alone, whatever batch it travels in.
 */

/** RMS norm without gain (gains are folded into the next matrix by the builder). */
export function rmsNormRows(
  src: Float32Array,
  rows: number,
  d: number,
  eps: number,
  out = new Float32Array(rows * d),
): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += src[base + i] * src[base + i];
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[base + i] = src[base + i] * inv;
  }
  return out;
}

/** dst[row] += add[row], elementwise (float32 rounding per element, no reduction). */
export function addInPlace(dst: Float32Array, add: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += add[i];
}

/** Copies the given rows of src (width d) into a new packed array. */
export function gatherRows(src: Float32Array, rows: readonly number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const from = rows[i] * d;
    const to = i * d;
    for (let j = 0; j < d; j++) out[to + j] = src[from + j];
  }
  return out;
}
