/**
 * What the batch engine needs from the outside world, narrowed to the calls it makes.
 * Every port is a view of a library type (libs/scheduler, libs/stream, libs/completions,
 * libs/telemetry, libs/model): the field and method types are taken from those libraries with `Pick<>` or
 * indexed access, never re-declared. Where the engine batches (one round trip for a whole
 * decode step) the port takes a list of the library call's arguments instead of one.
 *
 * `adapters/` implements them over the libraries; apps/worker wires the PostgreSQL ones
 * (completion rows through libs/completions, usage events); tests fake them. Every call may fail transiently
 * (Redis or PostgreSQL briefly unreachable): the engine retries with backoff and never
 * drops an accepted job.
 */
import type { FinishReason } from "@lite/core";
import type { CompletionRowStore, StreamedOutput } from "@lite/completions";
import type { DecodeBatch, ModelRuntime } from "@lite/model";
import type { Admission, CompletionJob, DispatchedJob } from "@lite/scheduler";
import type { TokenEvent } from "@lite/stream";
import type { CompletionUsage, WorkerMetrics } from "@lite/telemetry";

/** Names one completion of one tenant (every Redis key of it carries the tenant). */
export type CompletionRef = Pick<DispatchedJob, "tenantId" | "completionId">;

/** What the API put in the job: libs/scheduler `CompletionJob`, the fields the engine reads. */
export type JobPayload = Pick<
  CompletionJob,
  | "completionId"
  | "tenantId"
  | "modelName"
  | "prompt"
  | "seed"
  | "tierIds"
  | "mode"
  | "temperature"
  | "maxTokens"
  | "costWeight"
  | "enqueuedAtMs"
>;

/**
 * A job the dispatcher handed to this worker (libs/scheduler `DispatchedJob`, narrowed); it
 * stays in its queue until complete/fail.
 */
export interface WorkHandle extends Pick<DispatchedJob, "completionId" | "tenantId" | "lockLost"> {
  /** set when the queue gave the job back after too many stalls: fail it, do not run it */
  readonly deferredFailure?: DispatchedJob["deferredFailure"];
  /**
   * The job's payload when this is its first start (no earlier worker may have streamed or
   * finalised it), so the row need not be read; undefined for a replay or retry.
   */
  readonly firstStart?: JobPayload;
  /** the job's W3C trace context (libs/scheduler `CompletionJob.traceparent`), on every start */
  readonly traceparent?: CompletionJob["traceparent"];
  /** when the API queued the job, ms since the epoch */
  readonly enqueuedAtMs?: CompletionJob["enqueuedAtMs"];
  /**
   * Awaited once before the job's first decode step here, then `stepped` (fire-and-forget)
   * once that step completed: a worker that dies between the two is held against the job
   * (poison-job detection; the scheduler's handle notes them only for replays).
   */
  entering?(): Promise<void>;
  stepped?(): void;
  complete(): Promise<void>;
  /** a failure that must not be retried */
  fail(reason: string): Promise<void>;
}

/** libs/scheduler `FairScheduler`, batched per decode step. */
export interface WorkSource {
  /** The next job for a free slot, skipping the given tenants (at their per-worker cap); null when none. */
  next(excludeTenants: ReadonlySet<string>): Promise<WorkHandle | null>;
  /** Cost-weighted tokens each tenant received (cross-worker virtual time). */
  charge(charges: ReadonlyMap<string, number>): Promise<void>;
  /** Which of these completions were cancelled (one round trip for all). */
  cancelled(items: ReadonlyArray<CompletionRef>): Promise<Set<string>>;
  /** Resolves when work may be waiting, or after `ms`. */
  waitForWork(ms: number): Promise<void>;
}

/**
 * The completion rows: libs/completions `CompletionRowStore` (the only writer of rows), the
 * calls the engine makes. `load` gives the completion as the worker runs it
 * (`CompletionSpec`); `finalise` is endCompletion's row step (a row already final keeps
 * its outcome); `markRunning` moves only a QUEUED row; `ungrantedTiers` names the tiers of
 * a TierSet no longer granted to the tenant (read at every start, one query).
 */
export type CompletionStore = Pick<
  CompletionRowStore,
  "load" | "tenantWeight" | "ungrantedTiers" | "markRunning" | "finalise"
>;

/** The outcome written to a live completion row. */
export type FinalRow = Parameters<CompletionStore["finalise"]>[0];

/** One generated token as the stream stores it (libs/stream `TokenEvent`). */
export type TokenOut = Pick<TokenEvent, "index" | "tokenId" | "text">;

export interface ResumePoint {
  tokens: TokenOut[];
  finishReason?: FinishReason;
}

/** libs/stream `TokenStreams`, batched per decode step. */
export interface TokenSink {
  /**
   * Where a (re)started job stands: the tokens its stream already holds (indices 0..n-1,
   * contiguous) and the finish reason of its final event when it has one.
   */
  resumePoint(tenantId: string, completionId: string): Promise<ResumePoint>;
  /** appends (idempotent by index) the tokens of several completions, one round trip */
  append(batch: ReadonlyArray<CompletionRef & { tokens: TokenOut[] }>): Promise<void>;
  /**
   * what the client received: the stream's tokens before its done event and their text
   * (libs/completions `streamedOutput`); read when a completion ends CANCELLED or ERROR
   */
  streamed(tenantId: string, completionId: string): Promise<StreamedOutput>;
  /** the final event: done, index = number of tokens, with the finish reason (idempotent) */
  finish(tenantId: string, completionId: string, tokens: number, finishReason: FinishReason): Promise<void>;
}

/** libs/scheduler `Admission`: progress batched per decode step. */
export interface AdmissionPort {
  /** running totals of tokens generated (release outstanding tokens as they are produced; idempotent) */
  progress(items: ReadonlyArray<CompletionRef & { generatedTokens: number }>): Promise<void>;
  /** releases whatever the completion still holds (idempotent) */
  settle: Admission["settle"];
}

/** libs/telemetry usage events of one completion (idempotent per completion, meter and dimension). */
export interface UsagePort {
  record(u: CompletionUsage): Promise<unknown>;
}

/** A libs/model `DecodeBatch`, the calls the engine makes. */
export type EngineBatch = Pick<DecodeBatch, "add" | "remove" | "step" | "waiting" | "whenReady" | "kvBytes">;

/** A libs/model `ModelRuntime`, the parts the engine uses. */
export interface EngineModel {
  readonly tokenizer: Pick<ModelRuntime["tokenizer"], "encode" | "eos">;
  createBatch(): EngineBatch;
}

export interface ModelProvider {
  get(modelName: string): Promise<EngineModel>;
}

/** libs/telemetry `WorkerMetrics`, the calls the engine makes. */
export interface EngineMetrics {
  tokensGenerated: Pick<WorkerMetrics["tokensGenerated"], "inc">;
  ttftSeconds: Pick<WorkerMetrics["ttftSeconds"], "observe">;
  completionsFinished: Pick<WorkerMetrics["completionsFinished"], "inc">;
  decodeStepSeconds: Pick<WorkerMetrics["decodeStepSeconds"], "observe">;
}
