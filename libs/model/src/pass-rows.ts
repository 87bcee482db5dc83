import * as ort from "onnxruntime-node";
import { gatherRows } from "./row-math";

/**
 * The rows of one forward pass and the two helpers every stage of it uses. Rows are stacked
 * by sequence (all rows of the first sequence, then the next…). A sequence parked mid-pass
 * leaves: `select` keeps the other rows in the same order, and since every ONNX op of the
 * pass is row-invariant and every TypeScript reduction runs per row, the rows that stay are
 * computed exactly as they would have been without it.
 */

export interface PassTimings {
  onnxMs: number;
  expertRuns: number;
  rows: number;
}

export async function timed<T>(t: PassTimings, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await run();
  } finally {
    t.onnxMs += performance.now() - start;
  }
}

export async function runRows(
  session: ort.InferenceSession,
  x: Float32Array,
  rows: number,
  width: number,
): Promise<{ data: Float32Array; width: number }> {
  const out = await session.run({ x: new ort.Tensor("float32", x, [rows, width]) });
  const y = out.y;
  return { data: y.data as Float32Array, width: Number(y.dims[1]) };
}

export class PassRows {
  constructor(
    /** sequence index (into the pass's sequences) of each row */
    readonly seq: number[],
    /** position of each row in its sequence */
    readonly pos: number[],
    /** rows that attend in TypeScript (decode rows); the others take ONNX prompt attention */
    readonly viaTs: boolean[],
    /** per sequence: its first rows whose attention runs in ONNX (0: none) */
    readonly prefillRows: readonly number[],
    /** hidden state, [rows × d] */
    public x: Float32Array,
    readonly d: number,
  ) {}

  get n(): number {
    return this.seq.length;
  }

  /** The first row and row count of each sequence whose prompt attention runs in ONNX. */
  prefills(): { start: number; rows: number }[] {
    const out: { start: number; rows: number }[] = [];
    for (let r = 0; r < this.n; r++) {
      const si = this.seq[r];
      if (this.prefillRows[si] > 0 && (r === 0 || this.seq[r - 1] !== si))
        out.push({ start: r, rows: this.prefillRows[si] });
    }
    return out;
  }

  /** The last row of each sequence still in the pass, and the sequence it belongs to. */
  lastRows(): { rows: number[]; seqs: number[] } {
    const rows: number[] = [];
    const seqs: number[] = [];
    for (let r = 0; r < this.n; r++) {
      if (r + 1 < this.n && this.seq[r + 1] === this.seq[r]) continue;
      rows.push(r);
      seqs.push(this.seq[r]);
    }
    return { rows, seqs };
  }

  /** The indices of the rows whose sequence is not dropped, in order. */
  keeping(dropped: ReadonlySet<number>): number[] {
    const keep: number[] = [];
    for (let r = 0; r < this.n; r++) if (!dropped.has(this.seq[r])) keep.push(r);
    return keep;
  }

  /** These rows only (indices into this), in order, their hidden state copied. */
  select(keep: readonly number[]): PassRows {
    return new PassRows(
      keep.map((r) => this.seq[r]),
      keep.map((r) => this.pos[r]),
      keep.map((r) => this.viaTs[r]),
      this.prefillRows,
      gatherRows(this.x, keep, this.d),
      this.d,
    );
  }
}
