/**
 * Decode attention's two O(positions × head width) loops (KvCache.attend's steps 1 and 3) as a
 * WebAssembly SIMD module, for runs of rows of one sequence (a replay's catch-up rows): the
 * same IEEE float64 operations in the same order as the TypeScript loops, so the same bits.
 *
 * Why the bits are the same: both sides promote float32 keys/values and queries to float64
 * exactly, then multiply and add in float64 with round-to-nearest (WebAssembly's f64x2.mul /
 * f64x2.add are lane-wise IEEE operations, never fused; V8 never fuses JS arithmetic either).
 * Two lanes hold two of the TypeScript loop's independent partial sums, so each lane runs the
 * very sequence of operations the scalar loop runs:
 *   scores: lanes (s0, s1) and (s2, s3) over i += 4; s = ((s0 + s1) + (s2 + s3)) × scale.
 *   values: lanes (acc[i], acc[i+1]) …; per group of 4 positions
 *           acc += (w0·v0 + w1·v1) + (w2·v2 + w3·v3), then acc += w·v for the rest.
 * Max, exp and the final division stay in TypeScript (kv-cache.ts). attention-wasm.test.ts
 * checks the bits against KvCache.attend.
 *
 * The module is assembled here from its instructions (no toolchain, nothing fetched); its
 * memory holds one run's inputs: [q f64 × hd][acc f64 × hd][scores f64 × n][K f32][V f32].
 */

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// Instructions (the few this module needs).
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
/** i32.const (signed LEB128) */
function i32c(v: number): number[] {
  const out = [0x41];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const I32_ADD = [0x6a];
const I32_SHL = [0x74];
const I32_LT_U = [0x49];
const I32_GE_U = [0x4f];
const F64_ADD = [0xa0];
const F64_MUL = [0xa2];
const F64_GT = [0x64];
const SELECT = [0x1b];
const I32_GT_U = [0x4b];
/** f64.const -Infinity */
const F64_NEG_INF = [0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0xff];
const f64Load = (offset: number) => [0x2b, 3, ...uleb(offset)];
const f64Store = (offset: number) => [0x39, 3, ...uleb(offset)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const v128Load = (offset: number) => simd(0x00, 4, ...uleb(offset));
const v128Store = (offset: number) => simd(0x0b, 4, ...uleb(offset));
/** two float32 at the address, promoted to an f64x2 (v128.load64_zero + f64x2.promote_low_f32x4) */
const loadF32Pair = (offset: number) => [...simd(0x5d, 3, ...uleb(offset)), ...simd(0x5f)];
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
const F64X2_SPLAT = simd(0x14);
const lane = (l: number) => simd(0x21, l);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = [0x0b];
const br = (depth: number) => [0x0c, depth];
const brIf = (depth: number) => [0x0d, depth];

/**
 * scores(k, q, n, hd, scale, out) → max: out[p] = ((s0 + s1) + (s2 + s3)) × scale for p < n,
 * where s_j = Σ_{i ≡ j mod 4, ascending} q[i]·k[p][i], and the largest of them (taken in
 * position order, `if (s > max) max = s`). k: f32 [n][hd]; q, out: f64. hd % 4 = 0, hd ≥ 4.
 * Four positions per pass over q (eight independent sums), then the rest one by one.
 */
function scoresBody(): number[] {
  const [k, q, n, hd, scale, out] = [0, 1, 2, 3, 4, 5];
  const [p, qi, qEnd, rb] = [6, 7, 8, 9];
  const kr = [10, 11, 12, 13]; // k rows of the positions of one pass
  const acc = [14, 15, 16, 17, 18, 19, 20, 21]; // per position: lanes (s0, s1), (s2, s3)
  const [qa, qb] = [22, 23];
  const [max, sc] = [24, 25];
  const locals = vec([
    [8, I32],
    [10, V128],
    [2, F64],
  ]);
  /** out[p + dp] = ((x0 + x1) + (y0 + y1)) × scale; max updated */
  // prettier-ignore
  const emit = (x: number, y: number, dp: number) => [
    ...get(x), ...lane(0), ...get(x), ...lane(1), ...F64_ADD,
    ...get(y), ...lane(0), ...get(y), ...lane(1), ...F64_ADD,
    ...F64_ADD, ...get(scale), ...F64_MUL, ...set(sc),
    ...get(out), ...get(p), ...i32c(3), ...I32_SHL, ...I32_ADD, ...get(sc), ...f64Store(8 * dp),
    ...get(sc), ...get(max), ...get(sc), ...get(max), ...F64_GT, ...SELECT, ...set(max),
  ];
  /** acc = acc + q·k for the pair of columns in register qv and at byte offset kOff of the k row at `row` */
  // prettier-ignore
  const mac = (a: number, qv: number, row: number, kOff: number) => [
    ...get(a), ...get(qv), ...get(row), ...loadF32Pair(kOff), ...F64X2_MUL, ...F64X2_ADD, ...set(a),
  ];
  /** a loop taking m positions per pass while m are left; kr[0] is the row of position p */
  // prettier-ignore
  const positions = (m: number) => [
    ...BLOCK,
    ...LOOP,
    ...get(p), ...i32c(m), ...I32_ADD, ...get(n), ...I32_GT_U, ...brIf(1),
    ...acc.slice(0, 2 * m).flatMap((a) => [...V128_ZERO, ...set(a)]),
    ...get(q), ...set(qi),
    ...kr.slice(1, m).flatMap((r, j) => [...get(kr[j]), ...get(rb), ...I32_ADD, ...set(r)]),
    ...LOOP,
    ...get(qi), ...v128Load(0), ...set(qa),
    ...get(qi), ...v128Load(16), ...set(qb),
    ...kr.slice(0, m).flatMap((r, j) => [...mac(acc[2 * j], qa, r, 0), ...mac(acc[2 * j + 1], qb, r, 8)]),
    ...get(qi), ...i32c(32), ...I32_ADD, ...set(qi),
    ...kr.slice(0, m).flatMap((r) => [...get(r), ...i32c(16), ...I32_ADD, ...set(r)]),
    ...get(qi), ...get(qEnd), ...I32_LT_U, ...brIf(0),
    ...END,
    ...kr.slice(0, m).flatMap((_, j) => emit(acc[2 * j], acc[2 * j + 1], j)),
    ...get(kr[m - 1]), ...set(kr[0]), // the row of position p + m
    ...get(p), ...i32c(m), ...I32_ADD, ...set(p),
    ...br(0),
    ...END,
    ...END,
  ];
  // prettier-ignore
  const code = [
    ...F64_NEG_INF, ...set(max),
    ...i32c(0), ...set(p),
    ...get(k), ...set(kr[0]),
    ...get(hd), ...i32c(2), ...I32_SHL, ...set(rb),
    ...get(q), ...get(hd), ...i32c(3), ...I32_SHL, ...I32_ADD, ...set(qEnd),
    ...positions(4),
    ...positions(1),
    ...get(max),
  ];
  return [...locals, ...code, ...END];
}

/**
 * weigh(v, w, n, hd, grouped, acc): acc[i] = Σ_p w[p]·v[p][i] in the order of
 * KvCache.attend's step 3: positions < grouped (a multiple of 4) by groups of four,
 * acc += (w0·v0 + w1·v1) + (w2·v2 + w3·v3), then the rest one by one. v: f32 [n][hd];
 * w, acc: f64; hd % 16 = 0. Sixteen columns at a time (eight f64x2 accumulators), all
 * positions per column group: each column's sum takes its terms in position order.
 * weighAdd (`accumulate`): the same, the sums starting from acc's values instead of 0; over a
 * cache's blocks one after another (acc zeroed first) it takes the very operations weigh takes
 * over all of them at once (0 + x is x, exactly).
 */
function weighBody(accumulate = false): number[] {
  const [v, w, n, hd, grouped, acc] = [0, 1, 2, 3, 4, 5];
  const [row, col, vp, wp, gEnd, wEnd, accp, r2, r3] = [6, 7, 8, 9, 10, 11, 12, 13, 14];
  const cols = [15, 16, 17, 18, 19, 20, 21, 22];
  const [w0, w1, w2, w3] = [23, 24, 25, 26];
  const locals = vec([
    [9, I32],
    [12, V128],
  ]);
  const splat = (off: number, dst: number) => [...get(wp), ...f64Load(off), ...F64X2_SPLAT, ...set(dst)];
  /** acc = acc + ((w0·v0 + w1·v1) + (w2·v2 + w3·v3)) for the column pair at byte offset `off` */
  // prettier-ignore
  const group = (target: number, off: number) => [
    ...get(target),
    ...get(w0), ...get(vp), ...loadF32Pair(off), ...F64X2_MUL,
    ...get(w1), ...get(vp), ...get(row), ...I32_ADD, ...loadF32Pair(off), ...F64X2_MUL,
    ...F64X2_ADD,
    ...get(w2), ...get(vp), ...get(r2), ...I32_ADD, ...loadF32Pair(off), ...F64X2_MUL,
    ...get(w3), ...get(vp), ...get(r3), ...I32_ADD, ...loadF32Pair(off), ...F64X2_MUL,
    ...F64X2_ADD,
    ...F64X2_ADD,
    ...F64X2_ADD,
    ...set(target),
  ];
  // prettier-ignore
  const single = (target: number, off: number) => [
    ...get(target), ...get(w0), ...get(vp), ...loadF32Pair(off), ...F64X2_MUL, ...F64X2_ADD, ...set(target),
  ];
  // prettier-ignore
  const code = [
    ...get(hd), ...i32c(2), ...I32_SHL, ...set(row),
    ...get(row), ...get(row), ...I32_ADD, ...set(r2),
    ...get(r2), ...get(row), ...I32_ADD, ...set(r3),
    ...get(w), ...get(grouped), ...i32c(3), ...I32_SHL, ...I32_ADD, ...set(gEnd),
    ...get(w), ...get(n), ...i32c(3), ...I32_SHL, ...I32_ADD, ...set(wEnd),
    ...i32c(0), ...set(col),
    ...get(acc), ...set(accp),
    ...LOOP, // column groups of 16
    ...(accumulate
      ? cols.flatMap((x, j) => [...get(accp), ...v128Load(16 * j), ...set(x)])
      : cols.flatMap((x) => [...V128_ZERO, ...set(x)])),
    ...get(v), ...get(col), ...I32_ADD, ...set(vp),
    ...get(w), ...set(wp),
    ...BLOCK,
    ...LOOP, // groups of 4 positions
    ...get(wp), ...get(gEnd), ...I32_GE_U, ...brIf(1),
    ...splat(0, w0), ...splat(8, w1), ...splat(16, w2), ...splat(24, w3),
    ...cols.flatMap((x, j) => group(x, 8 * j)),
    ...get(vp), ...get(r3), ...get(row), ...I32_ADD, ...I32_ADD, ...set(vp),
    ...get(wp), ...i32c(32), ...I32_ADD, ...set(wp),
    ...br(0),
    ...END,
    ...END,
    ...BLOCK,
    ...LOOP, // the remaining positions one by one
    ...get(wp), ...get(wEnd), ...I32_GE_U, ...brIf(1),
    ...splat(0, w0),
    ...cols.flatMap((x, j) => single(x, 8 * j)),
    ...get(vp), ...get(row), ...I32_ADD, ...set(vp),
    ...get(wp), ...i32c(8), ...I32_ADD, ...set(wp),
    ...br(0),
    ...END,
    ...END,
    ...cols.flatMap((x, j) => [...get(accp), ...get(x), ...v128Store(16 * j)]),
    ...get(accp), ...i32c(128), ...I32_ADD, ...set(accp),
    ...get(col), ...i32c(64), ...I32_ADD, ...set(col),
    ...get(col), ...get(row), ...I32_LT_U, ...brIf(0),
    ...END,
  ];
  return [...locals, ...code, ...END];
}

/**
 * The kernel module's bytes (also compiled by the attention helper thread, attention-helper.ts).
 * `importMemory`: the module takes its memory from `env.memory` instead of defining one (a KV
 * cache's own memory, kv-memory.ts).
 */
export function moduleBytes(opts: { importMemory?: boolean } = {}): Uint8Array {
  const fnType = [0x60, ...vec([[I32], [I32], [I32], [I32], [F64], [I32]]), ...vec([[F64]])];
  const weighType = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([])];
  const name = (s: string) => vec([...Buffer.from(s, "utf8")].map((c) => [c]));
  const bodies = [scoresBody(), weighBody(), weighBody(true)];
  const memory = opts.importMemory
    ? section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, 1]]))
    : section(5, vec([[0x00, 1]]));
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([fnType, weighType])),
    ...(opts.importMemory ? memory : []),
    ...section(3, vec([[0], [1], [1]])),
    ...(opts.importMemory ? [] : memory),
    ...section(
      7,
      vec([
        [...name("memory"), 0x02, 0],
        [...name("scores"), 0x00, 0],
        [...name("weigh"), 0x00, 1],
        [...name("weighAdd"), 0x00, 2],
      ]),
    ),
    ...section(10, vec(bodies.map((b) => [...uleb(b.length), ...b]))),
  ]);
}

/** The few members of the WebAssembly JS API used here (the project's TypeScript libs declare none). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports?: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => KernelMemory;
}

export interface KernelMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export interface AttentionKernel {
  readonly memory: KernelMemory;
  /** returns the largest score */
  scores(k: number, q: number, n: number, hd: number, scale: number, out: number): number;
  weigh(v: number, w: number, n: number, hd: number, grouped: number, acc: number): void;
  /** weigh, adding to acc's values */
  weighAdd(v: number, w: number, n: number, hd: number, grouped: number, acc: number): void;
}

let kernel: AttentionKernel | null | undefined;

/** The compiled kernel, or null where WebAssembly SIMD is unavailable (callers use the TS loops). */
export function attentionKernel(): AttentionKernel | null {
  if (kernel !== undefined) return kernel;
  const bytes = moduleBytes();
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wasm?.validate(bytes)) return (kernel = null);
  const e = new wasm.Instance(new wasm.Module(bytes)).exports as unknown as AttentionKernel;
  kernel = { memory: e.memory, scores: e.scores, weigh: e.weigh, weighAdd: e.weighAdd };
  return kernel;
}

let importingModule: object | null | undefined;

/**
 * A new memory of `pages` 64 KiB pages and the kernel over it (a KV cache's own: kv-memory.ts),
 * or null where WebAssembly SIMD is unavailable. The module is compiled once.
 */
export function kernelWithOwnMemory(pages: number): AttentionKernel | null {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (importingModule === undefined) {
    const bytes = moduleBytes({ importMemory: true });
    importingModule = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;
  }
  if (!importingModule || !wasm) return null;
  const memory = new wasm.Memory({ initial: pages });
  const e = new wasm.Instance(importingModule, { env: { memory } }).exports as unknown as AttentionKernel;
  return { memory, scores: e.scores, weigh: e.weigh, weighAdd: e.weighAdd };
}

/** Makes the kernel's memory at least `bytes` long (views of it must be taken after this). */
export function ensureKernelBytes(k: AttentionKernel, bytes: number): void {
  const have = k.memory.buffer.byteLength;
  if (have >= bytes) return;
  const page = 65536;
  k.memory.grow(Math.ceil((bytes - have) / page));
}
