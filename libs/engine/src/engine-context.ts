import type { CompletionSpec } from "@lite/completions";
import { errText } from "./err-text";
import {
  resolveEngineOptions,
  type BatchEngineDeps,
  type BatchEngineOptions,
  type ResolvedEngineOptions,
} from "./engine-options";
import type { CompletionTrace } from "./completion-trace";
import type { EngineBatch, WorkHandle } from "./ports";
import { withRetry } from "@lite/core";
import { SlotAllocator } from "./slot-allocator";

/** A held sequence's KV byte-seconds so far (kv-meter.ts). */
export interface KvTally {
  /** KV bytes held at the last sample */
  bytes: number;
  /** when, ms (the engine's clock) */
  sampledAtMs: number;
  /** bytes × ms so far */
  byteMs: number;
}

/** A sequence held in a decode batch. */
export interface Running {
  handle: WorkHandle;
  spec: CompletionSpec;
  batch: EngineBatch;
  /** admission order in this worker (the allocator's tie-break) */
  order: number;
  /** the stream already held indices 0..resumeAfter when it started here (-1: none) */
  resumeAfter: number;
  tokenIds: number[];
  text: string[];
  expertCalls: Record<string, number>;
  firstEmitted: boolean;
  /** its first decode step here was announced (WorkHandle.entering) */
  entered?: boolean;
  /** its first decode step here completed (WorkHandle.stepped) */
  stepped?: boolean;
  /** its KV byte-seconds so far in this worker (kv-meter.ts) */
  kv?: KvTally;
}

/** What finalisation needs: a running sequence, or a job refused before it ran. */
export type Outcome = Pick<Running, "handle" | "spec" | "tokenIds" | "text" | "expertCalls"> &
  Partial<Pick<Running, "kv">>;

/** Steps and tokens, for the process' own logs and the overhead benchmark. */
export interface EngineStats {
  steps: number;
  /** first-token steps run between the layers of a step in progress (step.ts stepArrivals) */
  arrivalSteps: number;
  tokens: number;
  stepMs: number;
  flushMs: number;
  fillMs: number;
  idleMs: number;
}

/** Where the engine loop is: a step that never returns shows as "decode" for ever. */
export type LoopPhase = "idle" | "entering" | "decode" | "flush" | "waiting" | "between";

/**
 * The state one engine's concerns share (fill, job start, step and flush, finalise) and the
 * few operations all of them use. One per BatchEngine; nothing here is global.
 */
export class EngineContext {
  readonly opts: ResolvedEngineOptions;
  readonly now: () => number;
  readonly running = new Map<string, Running>();
  /** jobs being finalised (locks still extended until complete) */
  readonly finalising = new Map<string, WorkHandle>();
  readonly finalisations = new Set<Promise<void>>();
  /** one DecodeBatch per model */
  readonly batches = new Map<string, EngineBatch>();
  readonly allocator = new SlotAllocator();
  /** each held or finalising job's spans (completion-trace.ts); empty while tracing is off */
  readonly traces = new WeakMap<WorkHandle, CompletionTrace>();
  readonly stats: EngineStats = { steps: 0, arrivalSteps: 0, tokens: 0, stepMs: 0, flushMs: 0, fillMs: 0, idleMs: 0 };
  stopping = false;
  stopDeadline = Infinity;
  /** jobs taken from the dispatcher and being started, per tenant (counted towards its hold cap) */
  readonly startingByTenant = new Map<string, number>();
  /** next admission order */
  order = 0;
  /** wakes the idle loop when a job was started */
  wake?: () => void;
  /** the previous step's flush (its tokens, progress, charges and cancel check) */
  pendingFlush?: Promise<Set<string>>;
  /** where the loop is and since when (performance.now()), for stall reports (stall-watch.ts) */
  phase: { name: LoopPhase; since: number } = { name: "idle", since: performance.now() };

  constructor(
    opts: BatchEngineOptions,
    readonly deps: BatchEngineDeps,
  ) {
    this.opts = resolveEngineOptions(opts);
    this.now = deps.now ?? (() => Date.now());
  }

  /** The loop enters `name` (stall reports say where it is and for how long). */
  enter(name: LoopPhase): void {
    this.phase = { name, since: performance.now() };
  }

  /** sequences held at most: the batch plus the reserve */
  get limit(): number {
    return this.opts.batchSize + this.opts.reserve;
  }

  /** jobs taken from the dispatcher and being started */
  get starting(): number {
    let n = 0;
    for (const k of this.startingByTenant.values()) n += k;
    return n;
  }

  /** Takes a sequence out of its batch and out of the held set. */
  detach(r: Running): void {
    r.batch.remove(r.spec.completionId);
    this.running.delete(r.spec.completionId);
  }

  /** Lets a held job go unfinished here (lock lost, superseded, shutdown): its spans end. */
  drop(r: Running, why: string): void {
    this.detach(r);
    this.traces.get(r.handle)?.dropped(this.now(), why);
  }

  /** Waits for the pending flush; returns the completions it found cancelled. */
  async flushed(): Promise<Set<string>> {
    const p = this.pendingFlush;
    this.pendingFlush = undefined;
    return p ? p : new Set<string>();
  }

  /**
   * Retries a transient operation until it succeeds. With a handle: stops once the job's
   * lock is lost — the worker that holds the job now redoes the (idempotent) work. Stops
   * too once stop()'s grace is over.
   */
  retrying<T>(op: () => Promise<T>, handle?: WorkHandle): Promise<T> {
    return withRetry(op, {
      aborted: () => (handle?.lockLost ?? false) || (this.stopping && this.now() > this.stopDeadline),
      onError: (e, attempt) => {
        if (attempt === 1 || attempt % 20 === 0)
          this.deps.logger.warn({ err: errText(e), attempt }, "transient failure, retrying");
      },
    });
  }
}
