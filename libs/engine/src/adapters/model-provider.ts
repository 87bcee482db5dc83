import { loadModel, type ModelRuntime, type ModelRuntimeOptions } from "@lite/model";
import type { Logger } from "pino";
import type { ModelProvider } from "../ports";

export interface ModelProviderOptions {
  modelDir: string;
  publicKey?: string;
  executionProviders: string[];
  intraOpThreads: number;
  /** each model's expert store (the worker's expert cache); default the plain verified-file store */
  expertStore?: ModelRuntimeOptions["expertStore"];
  /** pad tenants' first uses of resident experts (TIMING_DEFENCE; default true) */
  timingDefence?: boolean;
  /** told each tenant's padded first uses (the worker's lite_padded_first_uses_total) */
  onPaddedFirstUses?: ModelRuntimeOptions["onPaddedFirstUses"];
  /** the worker's per-tenant KV quotas, shared by every model it loads (default: none) */
  kvLedger?: ModelRuntimeOptions["kvLedger"];
  logger: Logger;
}

/** Loads each model once, on first use (a worker serves whichever models its jobs name). */
export interface CachingModelProvider extends ModelProvider {
  get(modelName: string): Promise<ModelRuntime>;
  /** closes every model loaded so far */
  close(): Promise<void>;
}

export function cachingModelProvider(opts: ModelProviderOptions): CachingModelProvider {
  const loaded = new Map<string, Promise<ModelRuntime>>();
  return {
    get(modelName) {
      let p = loaded.get(modelName);
      if (!p) {
        const started = performance.now();
        p = loadModel({
          modelDir: opts.modelDir,
          modelName,
          publicKey: opts.publicKey,
          executionProviders: opts.executionProviders,
          intraOpThreads: opts.intraOpThreads,
          expertStore: opts.expertStore,
          // The worker's batch is shared: a cold expert parks its sequences, never the step.
          parkColdExperts: true,
          timingDefence: opts.timingDefence ?? true,
          onPaddedFirstUses: opts.onPaddedFirstUses,
          kvLedger: opts.kvLedger,
        }).then((m) => {
          opts.logger.info(
            { model: modelName, manifestSha256: m.manifestSha256, loadMs: Math.round(performance.now() - started) },
            "model loaded",
          );
          return m;
        });
        p.catch(() => loaded.delete(modelName));
        loaded.set(modelName, p);
      }
      return p;
    },
    async close() {
      for (const p of loaded.values()) await (await p.catch(() => undefined))?.close();
    },
  };
}
