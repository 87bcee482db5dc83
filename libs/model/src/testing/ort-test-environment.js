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

/** Set in the test realm once a test or hook of the file fails (read by @lite/testing's stack close). */
const FAILED_FLAG = "__liteTestFailed";

class OrtTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }

  /**
   * Marks the file failed, so a stack closed after a failure prints its workers' last output:
   * a worker's log is the only record of what it did, and it is gone once the run ends.
   */
  async handleTestEvent(event) {
    if (event.name === "test_fn_failure" || event.name === "hook_failure") this.global[FAILED_FLAG] = true;
  }
}

module.exports = OrtTestEnvironment;
