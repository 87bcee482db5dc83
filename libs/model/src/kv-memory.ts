import { softmaxNumerators } from "./attention-rows";
import { ensureKernelBytes, kernelWithOwnMemory, type AttentionKernel } from "./attention-wasm";

const PAGE = 65536;

/** Where one cache's blocks sit in its memory: what the kernel calls need (floats, kv-cache.ts's layout). */
export interface BlockLayout {
  /** floats per block: [layer][K|V][head][position in block][head width] */
  blockFloats: number;
  blockTokens: number;
  /** floats between a block's layers, and between its K and V */
  layerStride: number;
  kvStride: number;
  /** the layout's heads and their width */
  heads: number;
  hd: number;
}

/**
 * A KV cache's blocks in a WebAssembly memory of its own, with the attention kernel compiled
 * over it, so a decode row attends in place: no copy of the layer's keys and values into the
 * kernel's memory first (that copy, KvCache.loadRun, took 2.8 s of a worker's 20 s under the
 * overhead bench, against 1 s for the kernel itself). One memory per cache, never shared and
 * dropped with the cache's blocks (zeroed first), so no other sequence ever holds memory a
 * dropped one held (kv-quota.test.ts).
 *
 * Memory: [q f64 × hd][acc f64 × hd][scores f64 × maxPositions][block 0][block 1]…; it grows
 * by whole pages as blocks are added (which detaches views of it: take them again, `view`).
 * A row attends block by block: scores per block (the kernel's `scores`; their max combined
 * in position order), the softmax numerators over all positions, then the weighted sum block
 * after block (`weighAdd`, from zero): the operations KvCache.attend runs, in its order, so
 * the same bits (attention-wasm.test.ts).
 */
export class KvMemory {
  private readonly qPtr = 0;
  private readonly accPtr: number;
  private readonly scoresPtr: number;
  /** byte offset of block 0 */
  private readonly base: number;
  private readonly blockBytes: number;
  private f64: Float64Array;

  private constructor(
    private readonly k: AttentionKernel,
    private readonly layout: BlockLayout,
    /** positions the scores scratch holds: a longer row attends over a copy (KvCache.loadRun) */
    readonly maxPositions: number,
  ) {
    this.accPtr = 8 * layout.hd;
    this.scoresPtr = 16 * layout.hd;
    this.base = align16(this.scoresPtr + 8 * maxPositions);
    this.blockBytes = 4 * layout.blockFloats;
    this.f64 = new Float64Array(k.memory.buffer);
  }

  /** A memory for this layout (head width a multiple of 16), or null where the kernel is unavailable. */
  static create(layout: BlockLayout, maxPositions: number): KvMemory | null {
    if (layout.hd % 16 !== 0) return null;
    const k = kernelWithOwnMemory(Math.ceil(align16(16 * layout.hd + 8 * maxPositions) / PAGE));
    return k ? new KvMemory(k, layout, maxPositions) : null;
  }

  /** Makes room for `blocks` blocks; true when the memory grew (earlier views are detached). */
  ensureBlocks(blocks: number): boolean {
    const before = this.k.memory.buffer;
    ensureKernelBytes(this.k, this.base + blocks * this.blockBytes);
    if (this.k.memory.buffer === before) return false;
    this.f64 = new Float64Array(this.k.memory.buffer);
    return true;
  }

  /** Block b's floats (a view: take it again after ensureBlocks grew the memory). */
  view(b: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, this.base + b * this.blockBytes, this.layout.blockFloats);
  }

  /**
   * One row at position pos (its keys and values written) attends positions 0..pos of
   * `layer`, head by head: q read at qOff, out written at outOff, as KvCache.attend.
   */
  attend(layer: number, pos: number, q: Float32Array, qOff: number, out: Float32Array, outOff: number): void {
    const { blockTokens: bt, layerStride, kvStride, heads, hd } = this.layout;
    const n = pos + 1;
    const nBlocks = Math.ceil(n / bt);
    const scale = 1 / Math.sqrt(hd);
    const f64 = this.f64;
    const qAt = this.qPtr / 8;
    const accAt = this.accPtr / 8;
    for (let h = 0; h < heads; h++) {
      const qb = qOff + h * hd;
      for (let i = 0; i < hd; i++) f64[qAt + i] = q[qb + i];
      // byte offset of this layer's head h keys in block 0 (values: + kvStride floats)
      const headK = this.base + 4 * (layer * layerStride + h * bt * hd);
      let max = -Infinity;
      for (let b = 0; b < nBlocks; b++) {
        const len = Math.min(bt, n - b * bt);
        const m = this.k.scores(headK + b * this.blockBytes, this.qPtr, len, hd, scale, this.scoresPtr + 8 * b * bt);
        if (m > max) max = m;
      }
      // The scores in place in the kernel's memory (no view per call: this runs per row and layer).
      const inv = 1 / softmaxNumerators(f64, n, max, this.scoresPtr / 8);
      f64.fill(0, accAt, accAt + hd);
      for (let b = 0; b < nBlocks; b++) {
        const len = Math.min(bt, n - b * bt);
        const vAt = headK + 4 * kvStride + b * this.blockBytes;
        this.k.weighAdd(vAt, this.scoresPtr + 8 * b * bt, len, hd, len - (len % 4), this.accPtr);
      }
      const ob = outOff + h * hd;
      for (let i = 0; i < hd; i++) out[ob + i] = f64[accAt + i] * inv;
    }
  }
}

const align16 = (bytes: number) => bytes + ((16 - (bytes % 16)) % 16);
