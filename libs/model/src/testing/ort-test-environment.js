/**
 * Jest runs each test file in its own vm realm, but onnxruntime-node's native binding
 * creates output arrays in the main realm, and onnxruntime-common's Tensor checks
 * `data instanceof Float32Array` against the test realm's constructor, failing with
 * "A float32 tensor's data must be type of function Float32Array()". Sharing the host's
 * typed-array constructors with the test realm fixes the check. Test files that run ONNX
 * sessions opt in with a `@jest-environment` docblock.
 */
const { TestEnvironment } = require("jest-environment-node");

const SHARED = [
  "ArrayBuffer",
  "SharedArrayBuffer",
  "DataView",
  "Float32Array",
  "Float64Array",
  "Int8Array",
  "Int16Array",
  "Int32Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Uint16Array",
  "Uint32Array",
  "BigInt64Array",
  "BigUint64Array",
];

class OrtTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtTestEnvironment;
