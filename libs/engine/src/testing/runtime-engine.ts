import type { ModelRuntime } from "@lite/model";
import { BatchEngine } from "../batch-engine";
import type { EngineBatch, EngineModel } from "../ports";
import type { EngineHarness } from "./engine-fakes";

/**
 * The engine over a real model runtime's batches and the harness's fakes: the setup of the
 * engine tests that run the tiny model (parked steps, KV quotas, the KV meter).
 */

/** An EngineModel over the runtime's batches; `onStep` sees each step's batch and ids before it runs. */
export function runtimeModel(
  rt: ModelRuntime,
  onStep?: (ids: Iterable<string> | undefined, batch: ReturnType<ModelRuntime["createBatch"]>) => void,
): EngineModel {
  return {
    tokenizer: rt.tokenizer,
    createBatch: (): EngineBatch => {
      const b = rt.createBatch();
      return {
        add: (s) => b.add(s),
        remove: (id) => b.remove(id),
        waiting: (id) => b.waiting(id),
        whenReady: () => b.whenReady(),
        kvBytes: (id) => b.kvBytes(id),
        step: (only, opts) => {
          onStep?.(only, b);
          return b.step(only, opts);
        },
      };
    },
  };
}

/** A BatchEngine with quick polls and no shutdown grace over the harness's ports. */
export function harnessEngine(
  h: EngineHarness,
  model: EngineModel,
  opts: { workerId: string; batchSize: number; now?: () => number },
): BatchEngine {
  return new BatchEngine(
    { workerId: opts.workerId, batchSize: opts.batchSize, idlePollMs: 1, fillPollMs: 1, shutdownGraceMs: 0 },
    {
      models: { get: async () => model },
      work: h.work,
      store: h.store,
      tokens: h.tokens,
      admission: h.admission,
      usage: h.usage,
      logger: h.logger,
      ...(opts.now && { now: opts.now }),
    },
  );
}
