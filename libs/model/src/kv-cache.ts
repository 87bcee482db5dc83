import { kvBlockBytes, kvCacheBytes, type KvShape } from "@lite/manifest";
import { attentionHelper } from "./attention-helper";
import { kernelRows, kernelRun, softmaxNumerators, type KernelRun } from "./attention-rows";
import { attentionKernel, ensureKernelBytes, type AttentionKernel } from "./attention-wasm";
import { headScores, weighValues, type HeadGeometry } from "./attention-loops";
import { KvMemory } from "./kv-memory";

/**
 * attendRows: runs shorter than this attend row by row in TypeScript. 1: every row goes
 * through the WebAssembly kernel, a decode step's single rows too (in place, below, or over a
 * copy): over a copy, one row of one layer (4 heads of 64) took 0.15 ms against 0.31 ms in
 * TypeScript at 700 positions, 0.21 against 0.41 at 1000, 0.04 against 0.11 at 200 (a
 * throwaway microbenchmark). Until then decode attention was ~70 % of a worker's thread
 * serving 1024-token completions (profile of the recovery bench's survivor).
 */
const KERNEL_MIN_ROWS = 1;
/**
 * attendRows: runs of at most this many rows (a decode step's) attend in place, in the
 * cache's own memory (kv-memory.ts); longer ones (a replay's catch-up) over one contiguous copy.
 */
const IN_PLACE_MAX_ROWS = 3;
/**
 * A decode row attends in place up to this many positions by default (the model's context is
 * passed by DecodeBatch), past them over a copy. One row of one layer (4 heads of 64), in
 * place ÷ over a copy, blocks of 40 rows each way in turn: 0.075 ÷ 0.129 ms at 300
 * positions, 0.120 ÷ 0.191 at 700, 0.182 ÷ 0.272 at 1000, 0.267 ÷ 0.402 at 1500. Each cache's
 * memory holds scratch for the scores of this many positions (8 bytes each).
 */
const IN_PLACE_MAX_POSITIONS = 8192;
/** attendRowsSplit: runs at least this long share their rows with the attention helper thread */
export const SPLIT_MIN_ROWS = 32;

/** attend()'s scratch, shared (attend is synchronous and never re-entered) */
let scratchScores = new Float64Array(1024);
let scratchQ = new Float64Array(0);
let scratchAcc = new Float64Array(0);

/**
 * Per-sequence KV cache in fixed-size blocks. A block holds `blockTokens` positions of keys
 * and values for every layer, so growing by one token allocates at most one block (O(1)
 * amortised append) and byte accounting is exact: bytes() = blocks held × blockBytes.
 * Block layout: [layer][K|V][head][position in block][head width], float32 (head-major, so
 * attention's inner loops over positions read contiguous memory); with heads = 1 this is
 * [layer][K|V][position in block][dModel].
 *
 * Bytes are @lite/manifest's kvCacheBytes of the model's shape (the API's admission counts a
 * prompt the same way). The blocks live in a WebAssembly memory of this cache's own
 * (kv-memory.ts: decode rows attend there, in place), or, where WebAssembly SIMD is missing,
 * each in a Float32Array. Either way they are fresh (zero-filled) and never reused: `release`
 * zeroes the ones it drops and lets their memory go, so a dropped sequence's keys and values
 * are gone at once even from a stale reference, and no other sequence ever holds that memory
 * (kv-quota.test.ts).
 */
export class KvCache {
  readonly blockBytes: number;
  private readonly blockFloats: number;
  private readonly layerStride: number;
  private readonly kvStride: number;
  private readonly shift: number;
  private readonly shape: KvShape;
  private blocks: Float32Array[] = [];
  private tokens = 0;
  /** this cache's memory (undefined: not made yet; null: none can be, blocks are Float32Arrays) */
  private memory: KvMemory | null | undefined;

  constructor(
    private readonly layers: number,
    private readonly dModel: number,
    readonly blockTokens = 16,
    /** heads of the layout (below); attend() may split finer, by any multiple of it */
    private readonly heads = 1,
    /** positions a decode row attends in place up to (rows past them attend over a copy) */
    private readonly inPlacePositions = IN_PLACE_MAX_POSITIONS,
  ) {
    if (!Number.isInteger(Math.log2(blockTokens))) throw new Error("blockTokens must be a power of two");
    if (!Number.isInteger(heads) || heads < 1 || dModel % heads !== 0)
      throw new Error("kv-cache: dModel must be a multiple of heads");
    this.shift = Math.log2(blockTokens);
    this.kvStride = blockTokens * dModel;
    this.layerStride = 2 * this.kvStride;
    this.blockFloats = layers * this.layerStride;
    this.shape = { layers, dModel };
    this.blockBytes = kvBlockBytes(this.shape, blockTokens);
    if (this.blockBytes !== this.blockFloats * 4) throw new Error("kv-cache: block layout and kvBlockBytes disagree");
  }

  /** Bytes this cache holds once it has `positions` positions (what a step that grows it to them needs). */
  bytesFor(positions: number): number {
    return kvCacheBytes(this.shape, positions, this.blockTokens);
  }

  /** The blocks held now (tests of isolation: a dropped sequence's blocks are zeroed and held by no one). */
  heldBlocks(): readonly Float32Array[] {
    return this.blocks;
  }

  /** positions stored */
  get length(): number {
    return this.tokens;
  }

  /** Bytes held right now, exactly (what a tenant's KV quota is charged). */
  bytes(): number {
    return this.blocks.length * this.blockBytes;
  }

  /** Makes room for positions up to `length - 1`. */
  grow(length: number): void {
    const want = Math.ceil(length / this.blockTokens);
    if (want > this.blocks.length) {
      const mem = this.ownMemory();
      if (!mem) while (this.blocks.length < want) this.blocks.push(new Float32Array(this.blockFloats));
      else {
        if (mem.ensureBlocks(want)) this.blocks = this.blocks.map((_, b) => mem.view(b));
        while (this.blocks.length < want) this.blocks.push(mem.view(this.blocks.length));
      }
    }
    this.tokens = Math.max(this.tokens, length);
  }

  /** This cache's memory, made at its first block (null where the kernel cannot run). */
  private ownMemory(): KvMemory | null {
    if (this.memory === undefined) {
      const hd = this.dModel / this.heads;
      const { blockFloats, blockTokens, layerStride, kvStride, heads } = this;
      this.memory = KvMemory.create(
        { blockFloats, blockTokens, layerStride, kvStride, heads, hd },
        this.inPlacePositions,
      );
    }
    return this.memory;
  }

  /** Writes one position's key and value rows (copied from src at the given offsets). */
  write(layer: number, pos: number, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    if (pos >= this.tokens) throw new Error(`kv-cache: position ${pos} beyond ${this.tokens}`);
    const block = this.blocks[pos >> this.shift];
    const hd = this.dModel / this.heads;
    const headStride = this.blockTokens * hd;
    const base = layer * this.layerStride + (pos & (this.blockTokens - 1)) * hd;
    // Element by element, not set(subarray): a view per head and row at every layer was a
    // tenth of a decode step's garbage.
    const vBase = this.kvStride;
    for (let h = 0; h < this.heads; h++) {
      const dst = base + h * headStride;
      const ks = kOff + h * hd;
      const vs = vOff + h * hd;
      for (let i = 0; i < hd; i++) {
        block[dst + i] = k[ks + i];
        block[dst + vBase + i] = v[vs + i];
      }
    }
  }

  /**
   * Causal attention of one query row over positions 0..pos, head by head. Scores, softmax
   * and the weighted sum run in float64 in position order: a fixed reduction order, so the
   * result depends only on this sequence's cache, never on the batch around it. Per head:
   *   1. scores[t] = q·k_t / √hd for t = 0..pos, and their max (headScores);
   *   2. scores[t] = exp(scores[t] − max), and their total (softmaxNumerators);
   *   3. acc = Σ scores[t]·v_t (weighValues); out = acc / total.
   */
  attend(
    layer: number,
    pos: number,
    heads: number,
    q: Float32Array,
    qOff: number,
    out: Float32Array,
    outOff: number,
  ): void {
    const d = this.dModel;
    const hd = d / heads;
    if (hd % 4 !== 0) throw new Error("kv-cache: head width must be a multiple of 4");
    if (heads % this.heads !== 0) throw new Error(`kv-cache: ${heads} heads do not split the layout's ${this.heads}`);
    const n = pos + 1;
    if (scratchScores.length < n) scratchScores = new Float64Array(Math.max(n, 2 * scratchScores.length));
    if (scratchQ.length < hd) {
      scratchQ = new Float64Array(hd);
      scratchAcc = new Float64Array(hd);
    }
    const stride = d / this.heads; // between positions, within a layout head
    const g: HeadGeometry = {
      blocks: this.blocks,
      bt: this.blockTokens,
      n,
      nBlocks: (n + this.blockTokens - 1) >> this.shift,
      stride,
      hd,
    };
    const headStride = this.blockTokens * stride;
    const kLayer = layer * this.layerStride;
    const vLayer = kLayer + this.kvStride;
    const scale = 1 / Math.sqrt(hd);
    const scores = scratchScores;
    const qh = scratchQ;
    const acc = scratchAcc;
    for (let h = 0; h < heads; h++) {
      const qb = qOff + h * hd;
      for (let i = 0; i < hd; i++) qh[i] = q[qb + i];
      const headBase = Math.floor((h * hd) / stride) * headStride + ((h * hd) % stride);
      const max = headScores(g, kLayer + headBase, qh, scale, scores);
      const inv = 1 / softmaxNumerators(scores, n, max);
      weighValues(g, vLayer + headBase, scores, acc);
      for (let i = 0; i < hd; i++) out[outOff + h * hd + i] = acc[i] * inv;
    }
  }

  /**
   * `count` rows of consecutive positions fromPos.. attend as `attend` would, row by row, with
   * the same bits; a run of at least KERNEL_MIN_ROWS (every run, a decode row too) goes through
   * the WebAssembly kernel (attention-wasm.ts), which runs attend's steps 1 and 3 in the same
   * float64 operations and order, over a contiguous copy of this layer's keys and values.
   * Row r reads q at qOff + r·qStride and writes out at outOff + r·outStride. Every position
   * up to the last row's must be written first.
   */
  attendRows(
    layer: number,
    fromPos: number,
    count: number,
    heads: number,
    q: Float32Array,
    qOff: number,
    qStride: number,
    out: Float32Array,
    outOff: number,
    outStride: number,
  ): void {
    if (fromPos + count > this.tokens)
      throw new Error(`kv-cache: position ${fromPos + count - 1} beyond ${this.tokens}`);
    const mem = this.memory;
    if (count <= IN_PLACE_MAX_ROWS && mem && heads === this.heads && fromPos + count <= mem.maxPositions) {
      for (let r = 0; r < count; r++)
        mem.attend(layer, fromPos + r, q, qOff + r * qStride, out, outOff + r * outStride);
      return;
    }
    const k = count >= KERNEL_MIN_ROWS ? this.kernelFor(heads) : null;
    if (!k) {
      for (let r = 0; r < count; r++)
        this.attend(layer, fromPos + r, heads, q, qOff + r * qStride, out, outOff + r * outStride);
      return;
    }
    const run = this.loadRun(k, layer, fromPos, count, heads);
    kernelRows(k, softmaxNumerators, run, 0, count, q, qOff, qStride, out, outOff, outStride);
  }

  /**
   * attendRows, with a run of at least `minRows` rows shared with the attention helper thread
   * (attention-helper.ts): it takes the later rows (about half the run's work: a row's cost
   * grows with its position) over a copy of this layer's keys and values while this thread
   * computes the first ones; the same bits as attendRows. Without the helper (or should it
   * fail) every row is computed here.
   */
  async attendRowsSplit(
    layer: number,
    fromPos: number,
    count: number,
    heads: number,
    q: Float32Array,
    qOff: number,
    qStride: number,
    out: Float32Array,
    outOff: number,
    outStride: number,
    minRows = SPLIT_MIN_ROWS,
  ): Promise<void> {
    const k = count >= Math.max(minRows, KERNEL_MIN_ROWS) ? this.kernelFor(heads) : null;
    const helper = k ? attentionHelper() : null;
    if (!k || !helper) {
      this.attendRows(layer, fromPos, count, heads, q, qOff, qStride, out, outOff, outStride);
      return;
    }
    if (fromPos + count > this.tokens)
      throw new Error(`kv-cache: position ${fromPos + count - 1} beyond ${this.tokens}`);
    const d = this.dModel;
    const run = this.loadRun(k, layer, fromPos, count, heads);
    // Row r costs ∝ its positions (fromPos + r + 1): split where the first rows hold half.
    const total = count * fromPos + (count * (count + 1)) / 2;
    let split = 0;
    for (let work = 0; split < count && 2 * (work + fromPos + split + 1) <= total; split++) work += fromPos + split + 1;
    const tail = count - split;
    const kv = new Float32Array(k.memory.buffer).slice(run.kPtr / 4, run.vPtr / 4 + run.n * d);
    const qRows = new Float32Array(tail * d);
    for (let r = split; r < count; r++)
      qRows.set(q.subarray(qOff + r * qStride, qOff + r * qStride + d), (r - split) * d);
    const later = helper.rows({ run, r0: split, r1: count, kv, q: qRows });
    later.catch(() => undefined); // awaited below, after the rows computed here
    kernelRows(k, softmaxNumerators, run, 0, split, q, qOff, qStride, out, outOff, outStride);
    let rows: Float32Array;
    try {
      rows = await later;
    } catch {
      this.attendRows(
        layer,
        fromPos + split,
        tail,
        heads,
        q,
        qOff + split * qStride,
        qStride,
        out,
        outOff + split * outStride,
        outStride,
      );
      return;
    }
    for (let r = 0; r < tail; r++) out.set(rows.subarray(r * d, (r + 1) * d), outOff + (split + r) * outStride);
  }

  /** The WebAssembly kernel when this split of heads can use it (null: attend row by row). */
  private kernelFor(heads: number): AttentionKernel | null {
    return heads === this.heads && (this.dModel / heads) % 16 === 0 ? attentionKernel() : null;
  }

  /**
   * Copies this layer's keys and values of positions 0..fromPos+count-1 into the kernel's
   * memory, per head contiguous over positions ([head][position][hd]), and returns the run.
   */
  private loadRun(k: AttentionKernel, layer: number, fromPos: number, count: number, heads: number): KernelRun {
    const d = this.dModel;
    const hd = d / heads;
    const n = fromPos + count;
    const bt = this.blockTokens;
    const run = kernelRun(n, hd, heads, fromPos, bt);
    ensureKernelBytes(k, run.vPtr + 4 * n * d);
    const f32 = new Float32Array(k.memory.buffer);
    const headStride = bt * hd;
    const kLayer = layer * this.layerStride;
    for (let b = 0; b * bt < n; b++) {
      const rows = Math.min(bt, n - b * bt);
      const block = this.blocks[b];
      for (let h = 0; h < heads; h++) {
        const src = kLayer + h * headStride;
        const dst = h * n * hd + b * bt * hd;
        f32.set(block.subarray(src, src + rows * hd), run.kPtr / 4 + dst);
        f32.set(block.subarray(src + this.kvStride, src + this.kvStride + rows * hd), run.vPtr / 4 + dst);
      }
    }
    return run;
  }

  /** Zeroes and drops every block; the cache can be reused from position 0. */
  release(): void {
    for (const b of this.blocks) b.fill(0);
    this.blocks = [];
    this.tokens = 0;
    this.memory = undefined; // a new one at the next block: never this one again
  }
}
