/**
 * What the batch engine needs from the outside world, narrowed to the calls it makes.
 * `wiring.ts` adapts libs/scheduler, libs/stream and PostgreSQL to these; tests can fake
 * them. Every call may fail transiently (Redis or PostgreSQL briefly unreachable): the
 * engine retries with backoff and never drops an accepted job.
 */

export type FinishReason = "STOP" | "LENGTH" | "CANCELLED" | "ERROR";
export type TerminalStatus = "COMPLETED" | "CANCELLED" | "FAILED";

/** A job the dispatcher handed to this worker; it stays in its queue until complete/fail. */
export interface WorkHandle {
  completionId: string;
  tenantId: string;
  /** true once the job's lock was lost (this worker stalled; another may run the job now) */
  readonly lockLost: boolean;
  /** set when the queue gave the job back after too many stalls: fail it, do not run it */
  readonly deferredFailure?: string | null;
  /**
   * The job's payload when this is its first start (no earlier worker may have streamed or
   * finalised it), so the row need not be read; undefined for a replay or retry.
   */
  readonly firstStart?: JobPayload;
  complete(): Promise<void>;
  /** a failure that must not be retried */
  fail(reason: string): Promise<void>;
}

/** What the API put in the job (libs/scheduler CompletionJob, the fields the engine uses). */
export interface JobPayload {
  completionId: string;
  tenantId: string;
  modelName: string;
  prompt: string;
  seed: string;
  tierIds: string[];
  mode: string;
  temperature: number;
  maxTokens: number;
  costWeight: number;
  enqueuedAtMs: number;
}

export interface WorkSource {
  /** The next job for a free slot, skipping the given tenants (at their per-worker cap); null when none. */
  next(excludeTenants: ReadonlySet<string>): Promise<WorkHandle | null>;
  /** Cost-weighted tokens a tenant received (cross-worker virtual time). */
  charge(charges: ReadonlyMap<string, number>): Promise<void>;
  /** Which of these completions were cancelled (one round trip for all). */
  cancelled(items: ReadonlyArray<{ tenantId: string; completionId: string }>): Promise<Set<string>>;
  /** Resolves when work may be waiting, or after `ms`. */
  waitForWork(ms: number): Promise<void>;
}

/** The completion as the worker runs it (from the row written by the API). */
export interface CompletionSpec {
  completionId: string;
  tenantId: string;
  tenantWeight: number;
  modelName: string;
  status: "QUEUED" | "RUNNING" | TerminalStatus;
  prompt: string;
  promptTokens: number;
  maxTokens: number;
  temperature: number;
  seed: string;
  mode: string;
  tierSet: string[];
  /** TierSet cost weight (tokens are charged × this) */
  costWeight: number;
  createdAt: Date;
  /** present when the row is already final (a replay after the worker finished it) */
  text?: string;
  outputTokens?: number;
  finishReason?: FinishReason | null;
}

export interface TokenOut {
  index: number;
  tokenId: number;
  text: string;
}

export interface CompletionStore {
  load(completionId: string): Promise<CompletionSpec | null>;
  /** the tenant's scheduling weight (may be cached briefly) */
  tenantWeight(tenantId: string): Promise<number>;
  markRunning(completionId: string, at: Date): Promise<void>;
  finalise(f: {
    completionId: string;
    status: TerminalStatus;
    finishReason: FinishReason;
    text: string;
    outputTokens: number;
    error?: string;
    finishedAt: Date;
  }): Promise<void>;
}

export interface TokenSink {
  /** index of the last token already in the completion's stream, -1 when none */
  lastIndex(tenantId: string, completionId: string): Promise<number>;
  /** appends (idempotent by index) the tokens of several completions, one round trip */
  append(batch: ReadonlyArray<{ tenantId: string; completionId: string; tokens: TokenOut[] }>): Promise<void>;
  /** the final event: done, index = number of tokens, with the finish reason (idempotent) */
  finish(tenantId: string, completionId: string, tokens: number, finishReason: FinishReason): Promise<void>;
}

export interface AdmissionPort {
  /** running totals of tokens generated (release outstanding tokens as they are produced; idempotent) */
  progress(items: ReadonlyArray<{ tenantId: string; completionId: string; generatedTokens: number }>): Promise<void>;
  /** releases whatever the completion still holds (idempotent) */
  settle(tenantId: string, completionId: string, generatedTokens: number): Promise<void>;
}

export interface UsagePort {
  record(u: {
    tenantId: string;
    completionId: string;
    inputTokens: number;
    outputTokens: number;
    expertCallsByTier: Record<string, number>;
    mode: string;
    occurredAt: Date;
  }): Promise<void>;
}
