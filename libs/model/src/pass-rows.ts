import * as ort from "onnxruntime-node";
import { gatherRows } from "./row-math";

/**
 * The rows of one forward pass and the two helpers every stage of it uses. Rows are stacked
 * by sequence (all rows of the first sequence, then the next…). A sequence parked mid-pass
 * leaves: `select` keeps the other rows in the same order; a parked sequence resuming at a
 * layer joins there: `join` inserts its saved rows in sequence order. Since every ONNX op of
 * the pass is row-invariant and every TypeScript reduction runs per row, the rows are
 * computed exactly as they would have been without the others.
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

  /**
   * These rows plus the given sequences' saved rows (each sequence absent from this), in
   * sequence order; hidden states copied.
   */
  join(
    added: ReadonlyArray<{ seq: number; pos: readonly number[]; viaTs: readonly boolean[]; x: Float32Array }>,
  ): PassRows {
    if (added.length === 0) return this;
    const d = this.d;
    const segments: { seq: number; pos: readonly number[]; viaTs: readonly boolean[]; x: Float32Array }[] = [...added];
    for (let r = 0; r < this.n;) {
      let end = r + 1;
      while (end < this.n && this.seq[end] === this.seq[r]) end++;
      segments.push({
        seq: this.seq[r],
        pos: this.pos.slice(r, end),
        viaTs: this.viaTs.slice(r, end),
        x: this.x.subarray(r * d, end * d),
      });
      r = end;
    }
    segments.sort((a, b) => a.seq - b.seq);
    const n = segments.reduce((sum, g) => sum + g.pos.length, 0);
    const x = new Float32Array(n * d);
    const seq: number[] = [];
    const pos: number[] = [];
    const viaTs: boolean[] = [];
    for (const g of segments) {
      if (seq.length > 0 && seq[seq.length - 1] === g.seq) throw new Error(`pass-rows: sequence ${g.seq} joined twice`);
      x.set(g.x, seq.length * d);
      for (let i = 0; i < g.pos.length; i++) {
        seq.push(g.seq);
        pos.push(g.pos[i]);
        viaTs.push(g.viaTs[i]);
      }
    }
    return new PassRows(seq, pos, viaTs, this.prefillRows, x, d);
  }

  /** The rows of one sequence: positions, attention path and a copy of their hidden state. */
  rowsOf(si: number): { pos: number[]; viaTs: boolean[]; x: Float32Array } {
    const idx: number[] = [];
    for (let r = 0; r < this.n; r++) if (this.seq[r] === si) idx.push(r);
    return {
      pos: idx.map((r) => this.pos[r]),
      viaTs: idx.map((r) => this.viaTs[r]),
      x: gatherRows(this.x, idx, this.d),
    };
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
