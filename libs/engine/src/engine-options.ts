import type { Logger } from "pino";
import type {
  AdmissionPort,
  CompletionStore,
  EngineMetrics,
  ModelProvider,
  TokenSink,
  UsagePort,
  WorkSource,
} from "./ports";

export interface BatchEngineOptions {
  workerId: string;
  /** sequences per decode step (WORKER_BATCH_SIZE, default 16) */
  batchSize: number;
  /** extra sequences held beyond the batch, open to tenants not at their cap (default max(2, ceil(batchSize/4)); 0 in fifo) */
  reserve?: number;
  /** how often an idle worker looks for work, ms (default 10) */
  idlePollMs?: number;
  /** give sequences that have not run yet a small step of their own (default true) */
  firstTokenSteps?: boolean;
  /** how often a busy worker looks for newly queued work, ms (default 10) */
  fillPollMs?: number;
  /** how long stop() lets running sequences finish, ms (default 30000) */
  shutdownGraceMs?: number;
  /** pause after each decode step, ms (default 0; tests use it to make completions last) */
  stepDelayMs?: number;
  /**
   * Benchmark baseline: no fairness in the worker either. Hold at most batchSize
   * sequences, no per-tenant cap, every held sequence steps (arrival order).
   */
  fifo?: boolean;
  /**
   * warn when held sequences have produced no token for this long, ms, naming where the loop
   * is and what each one waits for (stall-watch.ts); 0: never (default 10000)
   */
  stallWarnMs?: number;
}

/** The options with every default applied. */
export interface ResolvedEngineOptions extends Required<Omit<BatchEngineOptions, "reserve">> {
  reserve: number;
}

export function resolveEngineOptions(opts: BatchEngineOptions): ResolvedEngineOptions {
  return {
    workerId: opts.workerId,
    batchSize: opts.batchSize,
    reserve: opts.fifo ? 0 : (opts.reserve ?? Math.max(2, Math.ceil(opts.batchSize / 4))),
    idlePollMs: opts.idlePollMs ?? 10,
    firstTokenSteps: opts.firstTokenSteps !== false,
    fillPollMs: opts.fillPollMs ?? 10,
    shutdownGraceMs: opts.shutdownGraceMs ?? 30000,
    stepDelayMs: opts.stepDelayMs ?? 0,
    fifo: opts.fifo ?? false,
    stallWarnMs: opts.stallWarnMs ?? 10000,
  };
}

export interface BatchEngineDeps {
  models: ModelProvider;
  work: WorkSource;
  store: CompletionStore;
  tokens: TokenSink;
  admission: AdmissionPort;
  usage: UsagePort;
  metrics?: EngineMetrics;
  logger: Logger;
  /** wall clock for rows, deadlines and TTFT, ms since the epoch (default Date.now) */
  now?: () => number;
}
