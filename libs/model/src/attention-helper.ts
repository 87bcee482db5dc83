import { Worker } from "node:worker_threads";
import { kernelRows, softmaxNumerators, type KernelRun } from "./attention-rows";
import { attentionKernel, moduleBytes } from "./attention-wasm";

/**
 * A second thread for long runs of attention rows (a replay's catch-up rows: hundreds of rows,
 * each over hundreds of positions, in every layer): KvCache.attendRowsSplit gives it the later
 * rows of a run while the JS thread computes the first ones, so the two cores share a
 * replay's attention instead of one doing it while the other idles.
 *
 * Bits: the thread compiles the same kernel module and runs the same row loop and softmax,
 * from their source text (attention-rows.ts), over a copy of the same keys and values: the
 * same float64 operations in the same order (WebAssembly arithmetic is IEEE, unfused; V8's
 * Math.exp is its own, the same code in every thread of a process). attention-wasm.test.ts
 * compares a split run with KvCache.attend bit for bit.
 *
 * One thread per process, started when a model loads (or on first use); it holds the
 * process open only while rows are pending. If it cannot start or fails, the rows are
 * computed on the JS thread.
 */

interface Request {
  id: number;
  run: KernelRun;
  r0: number;
  r1: number;
  /** keys then values, as the run's kernel memory holds them from kPtr */
  kv: Float32Array;
  /** the rows' queries, d floats each */
  q: Float32Array;
}

type Reply = { id: number; out: Float32Array } | { id: number; error: string };

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const softmax = (0, eval)("(" + workerData.softmax + ")");
const kernelRows = (0, eval)("(" + workerData.rows + ")");
const e = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes)).exports;
const k = { memory: e.memory, scores: e.scores, weigh: e.weigh };
parentPort.on("message", (m) => {
  try {
    const run = m.run;
    const d = run.heads * run.hd;
    const need = run.vPtr + 4 * run.n * d;
    const have = k.memory.buffer.byteLength;
    if (have < need) k.memory.grow(Math.ceil((need - have) / 65536));
    new Float32Array(k.memory.buffer).set(m.kv, run.kPtr / 4);
    const out = new Float32Array((m.r1 - m.r0) * d);
    kernelRows(k, softmax, run, m.r0, m.r1, m.q, 0, d, out, 0, d);
    parentPort.postMessage({ id: m.id, out }, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.stack) || err) });
  }
});
`;

export class AttentionHelper {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (out: Float32Array) => void; reject: (e: Error) => void }>();
  private failed = false;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if ("error" in m) p.reject(new Error(`attention helper: ${m.error}`));
      else p.resolve(m.out);
    });
    const fail = (e: Error) => {
      this.failed = true;
      worker.unref();
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`attention helper exited (${code})`)));
    // Held open only while rows are pending (a 'message' listener refs it: unref'd after).
    worker.unref();
  }

  get usable(): boolean {
    return !this.failed;
  }

  /** Rows r0..r1-1 of the run over these keys and values: their outputs, d floats a row. */
  rows(req: Omit<Request, "id">): Promise<Float32Array> {
    if (this.failed) return Promise.reject(new Error("attention helper is not running"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, [req.kv.buffer as ArrayBuffer, req.q.buffer as ArrayBuffer]);
    });
  }

  static start(): AttentionHelper | null {
    if (!attentionKernel()) return null;
    try {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        // not the process's -r hooks (a TypeScript loader takes ~0.5 s to start in a thread)
        execArgv: [],
        workerData: { bytes: moduleBytes(), softmax: softmaxNumerators.toString(), rows: kernelRows.toString() },
      });
      return new AttentionHelper(worker);
    } catch {
      return null;
    }
  }
}

let helper: AttentionHelper | null | undefined;

/** The process's helper thread (started on first call), or null when it cannot run. */
export function attentionHelper(): AttentionHelper | null {
  if (helper === undefined) helper = AttentionHelper.start();
  // one that failed is not restarted: its rows go back to the JS thread
  if (helper && !helper.usable) helper = null;
  return helper;
}
