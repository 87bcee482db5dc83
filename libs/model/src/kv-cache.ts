/**
 * Per-sequence KV cache in fixed-size blocks. A block holds `blockTokens` positions of keys
 * and values for every layer, so growing by one token allocates at most one block (O(1)
 * amortised append) and byte accounting is exact: bytes() = blocks held × blockBytes.
 * Block layout: [layer][K|V][position in block][dModel], float32.
 */
export class KvCache {
  readonly blockBytes: number;
  private readonly blockFloats: number;
  private readonly layerStride: number;
  private readonly kvStride: number;
  private readonly shift: number;
  private blocks: Float32Array[] = [];
  private tokens = 0;

  constructor(
    private readonly layers: number,
    private readonly dModel: number,
    readonly blockTokens = 16,
  ) {
    if (!Number.isInteger(Math.log2(blockTokens))) throw new Error("blockTokens must be a power of two");
    this.shift = Math.log2(blockTokens);
    this.kvStride = blockTokens * dModel;
    this.layerStride = 2 * this.kvStride;
    this.blockFloats = layers * this.layerStride;
    this.blockBytes = this.blockFloats * 4;
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
    while (this.blocks.length * this.blockTokens < length) this.blocks.push(new Float32Array(this.blockFloats));
    this.tokens = Math.max(this.tokens, length);
  }

  /** Writes one position's key and value rows (copied from src at the given offsets). */
  write(layer: number, pos: number, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    if (pos >= this.tokens) throw new Error(`kv-cache: position ${pos} beyond ${this.tokens}`);
    const block = this.blocks[pos >> this.shift];
    const base = layer * this.layerStride + (pos & (this.blockTokens - 1)) * this.dModel;
    block.set(k.subarray(kOff, kOff + this.dModel), base);
    block.set(v.subarray(vOff, vOff + this.dModel), base + this.kvStride);
  }

  /**
   * Causal attention of one query row over positions 0..pos, head by head. Scores, softmax
   * and the weighted sum run in float64 in position order: a fixed reduction order, so the
   * result depends only on this sequence's cache, never on the batch around it.
   */
  attend(layer: number, pos: number, heads: number, q: Float32Array, qOff: number, out: Float32Array, outOff: number): void {
    const d = this.dModel;
    const hd = d / heads;
    if (hd % 4 !== 0) throw new Error("kv-cache: head width must be a multiple of 4");
    const scale = 1 / Math.sqrt(hd);
    const blocks = this.blocks;
    const shift = this.shift;
    const mask = this.blockTokens - 1;
    const kLayer = layer * this.layerStride;
    const vLayer = kLayer + this.kvStride;
    const scores = new Float64Array(pos + 1);
    const acc = new Float64Array(hd);
    // Locals only in the inner loops (V8 keeps them in registers); four partial sums in a
    // fixed interleave: still one fixed order per row, so still batch-independent.
    for (let h = 0; h < heads; h++) {
      const qb = qOff + h * hd;
      let max = -Infinity;
      for (let p = 0; p <= pos; p++) {
        const block = blocks[p >> shift];
        const kb = kLayer + (p & mask) * d + h * hd;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let i = 0; i < hd; i += 4) {
          s0 += q[qb + i] * block[kb + i];
          s1 += q[qb + i + 1] * block[kb + i + 1];
          s2 += q[qb + i + 2] * block[kb + i + 2];
          s3 += q[qb + i + 3] * block[kb + i + 3];
        }
        const s = (s0 + s1 + (s2 + s3)) * scale;
        scores[p] = s;
        if (s > max) max = s;
      }
      let total = 0;
      for (let p = 0; p <= pos; p++) {
        const e = Math.exp(scores[p] - max);
        scores[p] = e;
        total += e;
      }
      acc.fill(0);
      for (let p = 0; p <= pos; p++) {
        const block = blocks[p >> shift];
        const vb = vLayer + (p & mask) * d + h * hd;
        const w = scores[p] / total;
        for (let i = 0; i < hd; i++) acc[i] += w * block[vb + i];
      }
      for (let i = 0; i < hd; i++) out[outOff + h * hd + i] = acc[i];
    }
  }

  /** Drops every block; the cache can be reused from position 0. */
  release(): void {
    this.blocks = [];
    this.tokens = 0;
  }
}
