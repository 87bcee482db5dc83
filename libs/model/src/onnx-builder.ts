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
  modelType ??= protobuf
    .loadSync(path.join(__dirname, "onnx", "onnx-subset.proto"))
    .lookupType("onnx.ModelProto");
  return modelType;
}

interface TensorInit {
  name: string;
  dims: number[];
  data: Float32Array;
}

interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: { name: string; s?: string; i?: number }[];
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

/** Raw little-endian float32 bytes (ONNX raw_data is little-endian, as is every host we run on). */
function rawFloats(data: Float32Array): Buffer {
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
            : { name: a.name, type: 2, i: a.i ?? 0 },
        ),
      })),
      initializer: graph.initializers.map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: FLOAT,
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
