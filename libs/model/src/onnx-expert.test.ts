/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import * as protobuf from "protobufjs";
import { buildExpertModel } from "./onnx-builder";
import { Sfc32 } from "./seeded-random";
import { buildTinyModel, openTiny, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * The ONNX graphs are checked against plain TypeScript arithmetic over the same weights,
 * read back from the files (so the check does not trust the builder's own arrays), and
 * every ONNX op the decode loop uses is checked to be row-invariant.
 */

const ModelProto = protobuf.loadSync(path.join(__dirname, "onnx", "onnx-subset.proto")).lookupType("onnx.ModelProto");

interface Init {
  dims: number[];
  data: Float32Array;
}

function initializers(file: string): Map<string, Init> {
  const model = ModelProto.toObject(ModelProto.decode(fs.readFileSync(file)), { longs: Number, bytes: Buffer }) as {
    irVersion: number;
    opsetImport: { version: number }[];
    graph: { initializer: { name: string; dims: number[]; rawData: Buffer }[] };
  };
  expect(model.irVersion).toBe(10);
  expect(model.opsetImport[0].version).toBe(21);
  return new Map(
    model.graph.initializer.map((t) => {
      const copy = Buffer.from(t.rawData); // aligned copy
      return [t.name, { dims: t.dims, data: new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4) }];
    }),
  );
}

/** erf by Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, ample for a 1e-4 tolerance. */
function erf(x: number): number {
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return Math.sign(x) * y;
}

function referenceExpert(w: Map<string, Init>, x: Float32Array, rows: number): Float64Array {
  const W1 = w.get("W1")!,
    b1 = w.get("b1")!,
    W2 = w.get("W2")!,
    b2 = w.get("b2")!;
  const [d, width] = W1.dims;
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const h = new Float64Array(width);
    for (let j = 0; j < width; j++) {
      let s = b1.data[j];
      for (let i = 0; i < d; i++) s += x[r * d + i] * W1.data[i * width + j];
      h[j] = 0.5 * s * (1 + erf(s / Math.SQRT2));
    }
    for (let k = 0; k < d; k++) {
      let s = b2.data[k];
      for (let j = 0; j < width; j++) s += h[j] * W2.data[j * d + k];
      out[r * d + k] = s;
    }
  }
  return out;
}

describe("ONNX graphs", () => {
  let m: TinyModel;
  beforeAll(() => (m = buildTinyModel()));
  afterAll(() => m.cleanup());

  it("every expert's ONNX output matches a TypeScript reference of its weights to 1e-4", async () => {
    const rt = await openTiny(m);
    try {
      const d = rt.manifest.architecture.dModel;
      const rows = 5;
      const x = new Sfc32(7).fillUniform(new Float32Array(rows * d), 1.7);
      let checked = 0;
      let worst = 0;
      for (const tier of rt.tiers) {
        for (const layer of rt.expertRefs(tier.id)) {
          for (const ref of layer) {
            const session = await ort.InferenceSession.create(path.join(m.root, ref.file.path));
            const y = (await session.run({ x: new ort.Tensor("float32", x, [rows, d]) })).y.data as Float32Array;
            const expected = referenceExpert(initializers(path.join(m.root, ref.file.path)), x, rows);
            for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - expected[i]));
            await session.release();
            checked++;
          }
        }
      }
      expect(checked).toBe(2 * (8 + 8 + 8 + 4));
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await rt.close();
    }
  });

  it("dense linear blocks match their TypeScript reference (router, LM head with bias)", async () => {
    for (const rel of ["dense/l0-router.onnx", "dense/lm-head.onnx", "dense/l1-qkv.onnx"]) {
      const w = initializers(path.join(m.root, rel));
      const W = w.get("W")!;
      const b = w.get("b");
      const [inDim, outDim] = W.dims;
      const rows = 3;
      const x = new Sfc32(3).fillUniform(new Float32Array(rows * inDim), 1.5);
      const session = await ort.InferenceSession.create(path.join(m.root, rel));
      const y = (await session.run({ x: new ort.Tensor("float32", x, [rows, inDim]) })).y.data as Float32Array;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < outDim; j++) {
          let s = b ? b.data[j] : 0;
          for (let i = 0; i < inDim; i++) s += x[r * inDim + i] * W.data[i * outDim + j];
          expect(Math.abs(y[r * outDim + j] - s)).toBeLessThan(1e-4);
        }
      }
      await session.release();
    }
  });

  // The decode loop's batch invariance rests on this: a row's output bits must not depend
  // on which other rows share the call (MatMul, Add, Gelu, Gather on the CPU provider).
  it.each([1, 2])("expert rows are bit-identical alone or in any sub-batch (intra-op threads %i)", async (threads) => {
    for (const [d, width] of [
      [32, 64],
      [256, 512],
      [256, 3072],
    ]) {
      const r = new Sfc32(d + width);
      const model = buildExpertModel("inv", {
        dModel: d,
        width,
        w1: r.fillUniform(new Float32Array(d * width), 0.1),
        b1: r.fillUniform(new Float32Array(width), 0.1),
        w2: r.fillUniform(new Float32Array(width * d), 0.05),
        b2: r.fillUniform(new Float32Array(d), 0.1),
      });
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads });
      const n = 37;
      const x = r.fillUniform(new Float32Array(n * d), 2);
      const full = (await session.run({ x: new ort.Tensor("float32", x, [n, d]) })).y.data as Float32Array;
      for (const size of [1, 3, 8, 16]) {
        for (let start = 0; start + size <= n; start += size) {
          const part = (
            await session.run({ x: new ort.Tensor("float32", x.slice(start * d, (start + size) * d), [size, d]) })
          ).y.data as Float32Array;
          expect(
            Buffer.from(part.buffer, part.byteOffset, part.byteLength).equals(
              Buffer.from(full.buffer, full.byteOffset + start * d * 4, size * d * 4),
            ),
          ).toBe(true);
        }
      }
      await session.release();
    }
  });
});
