import * as os from "node:os";
import * as path from "node:path";
import * as protobuf from "protobufjs";

/**
 * Writes ONNX models (IR 10, opset 21) from TypeScript with protobufjs and the message
 * definitions in `onnx/onnx-subset.proto`. Graphs are tiny on purpose: one MatMul per
 * dense block, or an MLP per expert. Norms, attention and gate sums stay in TypeScript,
 * where their reduction order is ours (see README "Determinism").
 */

const IR_VERSION = 10;
const OPSET_VERSION = 21;
const FLOAT = 1;
const INT64 = 7;

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.loadSync(path.join(__dirname, "onnx", "onnx-subset.proto")).lookupType("onnx.ModelProto");
  return modelType;
}

interface TensorInit {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: { name: string; s?: string; i?: number; ints?: number[] }[];
}

interface GraphSpec {
  name: string;
  inputs: { name: string; elemType: number; dims: (number | string)[] }[];
  outputs: { name: string; elemType: number; dims: (number | string)[] }[];
  nodes: NodeSpec[];
  initializers: TensorInit[];
}

function valueInfo(v: { name: string; elemType: number; dims: (number | string)[] }) {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.elemType,
        shape: { dim: v.dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Raw little-endian bytes (ONNX raw_data is little-endian, as is every host we run on). */
function rawFloats(data: Float32Array | BigInt64Array): Buffer {
  if (os.endianness() !== "LE") throw new Error("onnx-builder: big-endian hosts are not supported");
  return Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export function encodeModel(graph: GraphSpec): Buffer {
  const type = onnxModelType();
  const message = type.fromObject({
    irVersion: IR_VERSION,
    producerName: "lite-llm-model-builder",
    producerVersion: "1",
    opsetImport: [{ domain: "", version: OPSET_VERSION }],
    graph: {
      name: graph.name,
      node: graph.nodes.map((n, i) => ({
        name: `${n.op.toLowerCase()}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: (n.attributes ?? []).map((a) =>
          a.s !== undefined
            ? { name: a.name, type: 3, s: Buffer.from(a.s, "utf8") }
            : a.ints !== undefined
              ? { name: a.name, type: 7, ints: a.ints }
              : { name: a.name, type: 2, i: a.i ?? 0 },
        ),
      })),
      initializer: graph.initializers.map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: t.data instanceof BigInt64Array ? INT64 : FLOAT,
        rawData: rawFloats(t.data),
      })),
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
  });
  return Buffer.from(type.encode(message).finish());
}

/** y[N, out] = x[N, in] · W[in, out] (+ b). Used for QKV, attention output, router, LM head. */
export function buildLinearModel(
  name: string,
  w: Float32Array,
  inDim: number,
  outDim: number,
  bias?: Float32Array,
): Buffer {
  const nodes: NodeSpec[] = [{ op: "MatMul", inputs: ["x", "W"], outputs: [bias ? "xw" : "y"] }];
  const initializers: TensorInit[] = [{ name: "W", dims: [inDim, outDim], data: w }];
  if (bias) {
    nodes.push({ op: "Add", inputs: ["xw", "b"], outputs: ["y"] });
    initializers.push({ name: "b", dims: [outDim], data: bias });
  }
  return encodeModel({
    name,
    inputs: [{ name: "x", elemType: FLOAT, dims: ["N", inDim] }],
    outputs: [{ name: "y", elemType: FLOAT, dims: ["N", outDim] }],
    nodes,
    initializers,
  });
}

export interface ExpertWeights {
  dModel: number;
  width: number;
  w1: Float32Array; // [dModel, width]
  b1: Float32Array; // [width]
  w2: Float32Array; // [width, dModel]
  b2: Float32Array; // [dModel]
}

/** An expert: y = Gelu(x·W1 + b1)·W2 + b2 (exact erf Gelu, opset 20+). */
export function buildExpertModel(name: string, e: ExpertWeights): Buffer {
  return encodeModel({
    name,
    inputs: [{ name: "x", elemType: FLOAT, dims: ["N", e.dModel] }],
    outputs: [{ name: "y", elemType: FLOAT, dims: ["N", e.dModel] }],
    nodes: [
      { op: "MatMul", inputs: ["x", "W1"], outputs: ["h0"] },
      { op: "Add", inputs: ["h0", "b1"], outputs: ["h1"] },
      { op: "Gelu", inputs: ["h1"], outputs: ["h2"] },
      { op: "MatMul", inputs: ["h2", "W2"], outputs: ["o0"] },
      { op: "Add", inputs: ["o0", "b2"], outputs: ["y"] },
    ],
    initializers: [
      { name: "W1", dims: [e.dModel, e.width], data: e.w1 },
      { name: "b1", dims: [e.width], data: e.b1 },
      { name: "W2", dims: [e.width, e.dModel], data: e.w2 },
      { name: "b2", dims: [e.dModel], data: e.b2 },
    ],
  });
}

/** x[N, d] = tokenTable[ids] + posTable[positions]: the embedding block. */
export function buildEmbeddingModel(
  name: string,
  tokenTable: Float32Array,
  vocab: number,
  posTable: Float32Array,
  maxContext: number,
  dModel: number,
): Buffer {
  return encodeModel({
    name,
    inputs: [
      { name: "ids", elemType: INT64, dims: ["N"] },
      { name: "positions", elemType: INT64, dims: ["N"] },
    ],
    outputs: [{ name: "x", elemType: FLOAT, dims: ["N", dModel] }],
    nodes: [
      { op: "Gather", inputs: ["E", "ids"], outputs: ["te"], attributes: [{ name: "axis", i: 0 }] },
      { op: "Gather", inputs: ["P", "positions"], outputs: ["pe"], attributes: [{ name: "axis", i: 0 }] },
      { op: "Add", inputs: ["te", "pe"], outputs: ["x"] },
    ],
    initializers: [
      { name: "E", dims: [vocab, dModel], data: tokenTable },
      { name: "P", dims: [maxContext, dModel], data: posTable },
    ],
  });
}

/**
 * Causal attention of one sequence's prompt rows (no weights: built in memory at load, not
 * a model file). Inputs: q [C, d] (a chunk of query rows), k and v [T, d] (keys and values
 * of positions 0..T-1), mask [C, T] (0 where the key is visible, a large negative number
 * where it is in the future). Output y [C, d]:
 *   per head: softmax((q · scale)·kᵀ + mask) · v   (Transpose, Mul, MatMul, Add, Softmax).
 * Which rows go into one call depends only on the sequence's prompt length (see
 * prefill-attention.ts), never on the batch.
 */
export function buildAttentionModel(dModel: number, heads: number): Buffer {
  const hd = dModel / heads;
  if (!Number.isInteger(hd)) throw new Error("onnx-builder: dModel must be a multiple of heads");
  return encodeModel({
    name: `causal-attention-d${dModel}-h${heads}`,
    inputs: [
      { name: "q", elemType: FLOAT, dims: ["C", dModel] },
      { name: "k", elemType: FLOAT, dims: ["T", dModel] },
      { name: "v", elemType: FLOAT, dims: ["T", dModel] },
      { name: "mask", elemType: FLOAT, dims: ["C", "T"] },
    ],
    outputs: [{ name: "y", elemType: FLOAT, dims: ["C", dModel] }],
    nodes: [
      { op: "Reshape", inputs: ["q", "split"], outputs: ["q3"] },
      { op: "Transpose", inputs: ["q3"], outputs: ["qt"], attributes: [{ name: "perm", ints: [1, 0, 2] }] }, // [H, C, hd]
      { op: "Mul", inputs: ["qt", "scale"], outputs: ["qh"] }, // scaling q, not the [H, C, T] scores: one big tensor fewer
      { op: "Reshape", inputs: ["k", "split"], outputs: ["k3"] },
      { op: "Transpose", inputs: ["k3"], outputs: ["kt"], attributes: [{ name: "perm", ints: [1, 2, 0] }] }, // [H, hd, T]
      { op: "Reshape", inputs: ["v", "split"], outputs: ["v3"] },
      { op: "Transpose", inputs: ["v3"], outputs: ["vh"], attributes: [{ name: "perm", ints: [1, 0, 2] }] }, // [H, T, hd]
      { op: "MatMul", inputs: ["qh", "kt"], outputs: ["s1"] }, // [H, C, T]
      { op: "Add", inputs: ["s1", "mask"], outputs: ["s2"] },
      { op: "Softmax", inputs: ["s2"], outputs: ["p"], attributes: [{ name: "axis", i: -1 }] },
      { op: "MatMul", inputs: ["p", "vh"], outputs: ["o0"] }, // [H, C, hd]
      { op: "Transpose", inputs: ["o0"], outputs: ["o1"], attributes: [{ name: "perm", ints: [1, 0, 2] }] }, // [C, H, hd]
      { op: "Reshape", inputs: ["o1", "merge"], outputs: ["y"] },
    ],
    initializers: [
      { name: "split", dims: [3], data: BigInt64Array.from([0n, BigInt(heads), BigInt(hd)]) },
      { name: "merge", dims: [2], data: BigInt64Array.from([0n, BigInt(dModel)]) },
      { name: "scale", dims: [], data: Float32Array.of(1 / Math.sqrt(hd)) },
    ],
  });
}
