import type { Logger } from "pino";
import type { Clock, CompletionStatus, FinishReason, TerminalStatus, TierMode } from "@lite/core";
import type { Prisma, PrismaClient } from "@lite/db";
import type { AuditSink } from "@lite/auth";
import type { Admission, FairScheduler } from "@lite/scheduler";
import type { TokenStreams } from "@lite/stream";
import type { ApiCompletionMetrics } from "@lite/telemetry";
import type { CreateIntents } from "./create-intents";
import type { CompletionCaches } from "./completion-caches";
import type { Context } from "@lite/tracing";

/** A `Completion` row as PostgreSQL holds it. */
export type CompletionRow = Prisma.CompletionGetPayload<true>;

/** What a caller asks for (any transport parses its own arguments into this). */
export interface CompletionInput {
  /** model id or name; null/undefined: the deployment's default model */
  model?: string | null;
  prompt: string;
  maxTokens: number;
  /** ignored when `tiers` is given; default BALANCED */
  mode?: TierMode | null;
  /** explicit tier ids instead of a mode; each must be granted to the tenant */
  tiers?: string[] | null;
  /** decimal string; default: 64 random bits chosen by the server */
  seed?: string | null;
  /** 0..2; default 0 (greedy) */
  temperature?: number | null;
  /**
   * 1..128 printable ASCII characters: a retry with the same key within the TTL gets the same
   * completion (idempotency.ts); scoped to the tenant
   */
  idempotencyKey?: string | null;
}

/** A completion as every transport shows it: the row, with the text so far while it runs. */
export interface CompletionView {
  id: string;
  tenantId: string;
  model: string;
  status: CompletionStatus;
  mode: TierMode;
  tierSet: string[];
  degraded: boolean;
  seed: string;
  promptTokens: number;
  outputTokens: number;
  text: string;
  finishReason: FinishReason | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** One event of the token stream as subscribers see it (the stream's event with its completion id). */
export interface CompletionTokenEvent {
  completionId: string;
  index: number;
  tokenId: number;
  text: string;
  done: boolean;
  finishReason: FinishReason | null;
}

/** How a completion ends: what `endCompletion` writes to the row, the stream and admission. */
export interface CompletionEnd {
  tenantId: string;
  completionId: string;
  finishReason: FinishReason;
  /** the output; undefined leaves the row's (empty) text alone — a completion that never ran */
  text?: string;
  /** tokens generated; settles admission and places the done event. Default 0 */
  outputTokens?: number;
  error?: string;
  finishedAt: Date;
}

/** The row half of an ending, in the shape the batch engine's CompletionStore.finalise takes. */
export interface Finalisation {
  completionId: string;
  status: TerminalStatus;
  finishReason: FinishReason;
  text?: string;
  outputTokens?: number;
  error?: string;
  finishedAt: Date;
}

/** The completion as a worker runs it (read from the row the API wrote). */
export interface CompletionSpec {
  completionId: string;
  tenantId: string;
  tenantWeight: number;
  modelName: string;
  status: CompletionStatus;
  prompt: string;
  promptTokens: number;
  maxTokens: number;
  temperature: number;
  seed: string;
  mode: TierMode;
  tierSet: string[];
  /** TierSet cost weight (tokens are charged × this) */
  costWeight: number;
  createdAt: Date;
  /** present when the row is already final (a replay after a worker finished it) */
  text?: string;
  outputTokens?: number;
  finishReason?: FinishReason | null;
}

export type CompletionLogger = Pick<Logger, "warn" | "error">;

/**
 * Everything the lifecycle touches, passed in (never imported as globals). Each function
 * takes a `Pick` of it: only what it uses.
 */
export interface CompletionResources {
  db: PrismaClient;
  /** the reservation: admit at create, settle at the end (abandon: an admit whose answer was lost) */
  admission: Pick<Admission, "admit" | "settle" | "abandon">;
  /** producer side only: API processes enqueue and cancel, never dispatch */
  scheduler: Pick<FairScheduler, "enqueue" | "cancel">;
  streams: Pick<TokenStreams, "append" | "lastIndex" | "exists" | "read" | "readAll">;
  audit: AuditSink;
  clock: Clock;
  log: CompletionLogger;
  metrics: Pick<ApiCompletionMetrics, "admitted" | "throttled">;
  /** contract limits on a request (MAX_PROMPT_BYTES, MAX_OUTPUT_TOKENS) */
  inputLimits: { maxPromptBytes: number; maxOutputTokens: number };
  /** the model's context length in tokens, or undefined when unknown (then not checked) */
  maxContextTokens(modelName: string): number | undefined;
  /**
   * KV-cache bytes a prompt of `promptTokens` tokens holds in a worker (@lite/manifest
   * `promptKvBytes` of the model's shape), or undefined when the shape is unknown (then not
   * checked against the tenant's kvCacheBytes); absent: not checked
   */
  promptKvBytes?(modelName: string, promptTokens: number): number | undefined;
  /** createCompletion's write-ahead intents (the reconciler repairs what a crash leaves) */
  intents: Pick<CreateIntents, "begin" | "end">;
  /**
   * TEST ONLY fault injection: called at each step boundary of a create ("intent",
   * "admitted", "row"); the crash tests make it kill the process. Unset in production.
   */
  faultAt?: (step: CreateStep) => void;
  /** how long an idempotency key holds its completion, ms; default 24 h (DEFAULT_IDEMPOTENCY_TTL_MS) */
  idempotencyTtlMs?: number;
  /** the process's caches of the tenant, its quota and grants (none: read them every time) */
  caches?: CompletionCaches;
  /** the span context the create's spans are children of (the API's request span); none: a new trace */
  traceContext?: Context;
}

/** The step boundaries of createCompletion a fault can be injected at (tests). */
export type CreateStep = "intent" | "admitted" | "row";

/** What the steps of `endCompletion` run on (a narrower view of CompletionResources). */
export interface EndResources {
  db: PrismaClient;
  admission: Pick<Admission, "settle">;
  streams: Pick<TokenStreams, "append" | "lastIndex">;
}
