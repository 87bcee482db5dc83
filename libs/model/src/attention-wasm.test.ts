import { attentionHelper } from "./attention-helper";
import { attentionKernel, ensureKernelBytes } from "./attention-wasm";
import { headScores, weighValues, type HeadGeometry } from "./attention-loops";
import { KvCache } from "./kv-cache";
import { Sfc32 } from "./seeded-random";

/**
 * KvCache.attendRows (the WebAssembly kernel, for a replay's catch-up rows and a decode step's
 * single rows) must give the bits KvCache.attend gives row by row: a replay, or a row computed
 * on a worker of another version, that differed by one bit would sample other tokens after it.
 */
describe("attendRows: the WebAssembly kernel gives attend's bits", () => {
  it("compiles here (Node's WebAssembly has SIMD), and so does the attention helper thread", () => {
    expect(attentionKernel()).not.toBeNull();
    expect(attentionHelper()).not.toBeNull();
  });

  const shapes = [
    { d: 256, heads: 4, bt: 16, positions: 150 },
    { d: 32, heads: 2, bt: 16, positions: 77 },
    { d: 32, heads: 1, bt: 4, positions: 41 },
    { d: 16, heads: 2, bt: 2, positions: 23 },
    { d: 8, heads: 2, bt: 1, positions: 13 },
    { d: 64, heads: 4, bt: 8, positions: 35 },
    { d: 32, heads: 2, bt: 2, positions: 19 },
    { d: 16, heads: 1, bt: 1, positions: 11 },
  ];

  it.each(shapes)("d $d, $heads heads, blocks of $bt, $positions positions", async ({ d, heads, bt, positions }) => {
    const rng = new Sfc32(d * 1000 + positions);
    const next = () => rng.nextU32() / 4294967296;
    const layers = 2;
    const kv = new KvCache(layers, d, bt, heads);
    kv.grow(positions);
    // Keys, values and queries of varied magnitudes, so scores spread and rounding matters.
    const rand = (n: number) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * (1 + 3 * next()));
    for (let l = 0; l < layers; l++) for (let p = 0; p < positions; p++) kv.write(l, p, rand(d), 0, rand(d), 0);
    const q = rand(positions * 3 * d);
    for (const fromPos of [0, 1, 5, positions - 9]) {
      const count = positions - fromPos;
      for (let l = 0; l < layers; l++) {
        const byRow = new Float32Array(count * d);
        for (let r = 0; r < count; r++) kv.attend(l, fromPos + r, heads, q, r * 3 * d, byRow, r * d);
        const byRun = new Float32Array(count * d);
        kv.attendRows(l, fromPos, count, heads, q, 0, 3 * d, byRun, 0, d);
        // the later rows on the attention helper thread (a run of ≥ 4 rows split)
        const bySplit = new Float32Array(count * d);
        await kv.attendRowsSplit(l, fromPos, count, heads, q, 0, 3 * d, bySplit, 0, d, 4);
        const b = new Uint32Array(byRow.buffer);
        for (const [how, got] of [
          ["run", byRun],
          ["split", bySplit],
        ] as const) {
          const a = new Uint32Array(got.buffer);
          expect({ how, fromPos, l, firstDifferentBits: a.findIndex((bits, i) => bits !== b[i]) }).toEqual({
            how,
            fromPos,
            l,
            firstDifferentBits: -1,
          });
        }
      }
    }
    // A decode step's rows: runs of 1 (and 2, 3) rows, at every position, go through the kernel too.
    for (let l = 0; l < layers; l++)
      for (let pos = 0; pos < positions; pos++) {
        const count = Math.min(1 + (pos % 3), positions - pos);
        const byRow = new Float32Array(count * d);
        for (let r = 0; r < count; r++) kv.attend(l, pos + r, heads, q, r * 3 * d, byRow, r * d);
        const byRun = new Float32Array(count * d);
        kv.attendRows(l, pos, count, heads, q, 0, 3 * d, byRun, 0, d);
        const a = new Uint32Array(byRun.buffer);
        const b = new Uint32Array(byRow.buffer);
        expect({ pos, count, l, firstDifferentBits: a.findIndex((bits, i) => bits !== b[i]) }).toEqual({
          pos,
          count,
          l,
          firstDifferentBits: -1,
        });
      }
  });

  it("a cache's blocks live in a memory of its own, grown as it grows: decode rows attend in place with attend's bits", () => {
    const d = 256;
    const heads = 4;
    const rng = new Sfc32(99);
    const rand = (n: number) => Float32Array.from({ length: n }, () => (rng.nextU32() / 4294967296) * 2 - 1);
    // one position at a time, as decode steps grow it (the memory grows, earlier views detach)
    const kv = new KvCache(2, d, 16, heads);
    const other = new KvCache(2, d, 16, heads);
    other.grow(1);
    const q = rand(d);
    for (let p = 0; p < 70; p++) {
      kv.grow(p + 1);
      for (let l = 0; l < 2; l++) kv.write(l, p, rand(d), 0, rand(d), 0);
      const inPlace = new Float32Array(d);
      const byRow = new Float32Array(d);
      kv.attendRows(p % 2, p, 1, heads, q, 0, d, inPlace, 0, d);
      kv.attend(p % 2, p, heads, q, 0, byRow, 0);
      expect(Buffer.from(inPlace.buffer).equals(Buffer.from(byRow.buffer))).toBe(true);
    }
    const blocks = kv.heldBlocks();
    expect(blocks).toHaveLength(5);
    expect(blocks.every((b) => b.buffer === blocks[0].buffer)).toBe(true);
    expect(blocks[0].buffer).not.toBe(other.heldBlocks()[0].buffer);
  });

  // attend's float32 output can hide a last-bit difference in a float64 score or sum: the
  // kernel's own float64 results are compared with the TypeScript steps' too.
  it.each([
    { hd: 64, n: 203, bt: 16 },
    { hd: 16, n: 18, bt: 2 },
    { hd: 16, n: 7, bt: 4 },
  ])(
    "scores and weighted sums: float64 bits of the TypeScript steps (hd $hd, n $n, blocks of $bt)",
    ({ hd, n, bt }) => {
      const k = attentionKernel()!;
      const rng = new Sfc32(hd * 7 + n);
      const next = () => (rng.nextU32() / 4294967296) * 2 - 1;
      const blocks = Array.from({ length: Math.ceil(n / bt) }, () => Float32Array.from({ length: bt * hd }, next));
      const g: HeadGeometry = { blocks, bt, n, nBlocks: blocks.length, stride: hd, hd };
      const q = Float64Array.from({ length: hd }, () => Math.fround(next() * 3));
      const want = new Float64Array(n);
      const wantMax = headScores(g, 0, q, 0.125, want);
      const weights = Float64Array.from({ length: n }, () => Math.exp(next()));
      const wantAcc = new Float64Array(hd);
      weighValues(g, 0, weights, wantAcc);

      const [qPtr, accPtr, wPtr, sPtr, kvPtr] = [0, 8 * hd, 16 * hd, 16 * hd + 8 * n, 16 * hd + 16 * n];
      ensureKernelBytes(k, kvPtr + 4 * n * hd);
      const buf = k.memory.buffer;
      new Float64Array(buf, qPtr, hd).set(q);
      new Float64Array(buf, wPtr, n).set(weights);
      blocks.forEach((b, i) =>
        new Float32Array(buf, kvPtr + 4 * i * bt * hd, Math.min(bt, n - i * bt) * hd).set(
          b.subarray(0, Math.min(bt, n - i * bt) * hd),
        ),
      );
      expect(k.scores(kvPtr, qPtr, n, hd, 0.125, sPtr)).toBe(wantMax);
      k.weigh(kvPtr, wPtr, n, hd, bt >= 4 ? n - (n % 4) : 0, accPtr);
      expect(Buffer.from(new Float64Array(buf, sPtr, n).slice().buffer)).toEqual(Buffer.from(want.buffer));
      expect(Buffer.from(new Float64Array(buf, accPtr, hd).slice().buffer)).toEqual(Buffer.from(wantAcc.buffer));
    },
  );

  it("attends over the positions written so far only", () => {
    const kv = new KvCache(1, 8, 4, 2);
    kv.grow(6);
    expect(() => kv.attendRows(0, 3, 4, 2, new Float32Array(4 * 24), 0, 24, new Float32Array(32), 0, 8)).toThrow(
      /position 6 beyond 6/,
    );
  });
});
