/**
 * endCompletion: the one way a completion ends, whoever ends it — the API (cancelled while
 * still queued, or admitted but never queued) or the worker (stop, length, cancel, error).
 *
 *  1. the row (`finaliseRow`): status (from the finish reason), finishReason, text,
 *     outputTokens, error, finishedAt — only while the row is QUEUED or RUNNING, so the first
 *     ending wins and every later one is a no-op;
 *  2. the stream's done event (`endStream`) at index max(outputTokens, lastIndex + 1): after
 *     whatever the stream holds (a job cancelled or failed while replaying has streamed more
 *     than it regenerated); an existing done event wins (libs/stream stores nothing after one);
 *  3. admission settle: releases whatever the reservation still holds (a no-op once settled).
 *
 * Each step is idempotent, so either side may run any of them again, in any number: a
 * retried step, a replayed job, or the API and a worker both ending the same completion
 * leave one final row, one done event and one release. The worker records usage before
 * step 1 and completes its job after step 3, each step under its own lock-aware retry.
 */
import { ACTIVE_STATUSES, sleep, statusOfFinish, withRetry, type Clock, type FinishReason } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { TokenStreams } from "@lite/stream";
import type { CompletionEnd, CompletionLogger, EndResources, Finalisation } from "./completion.types";
import { recordStreamedUsage, streamedOutput, type StreamedOutput } from "./streamed-output";

/** Step 1. Returns true when this call ended the row, false when it was already final. */
export async function finaliseRow(db: PrismaClient, f: Finalisation): Promise<boolean> {
  // Raw SQL: every completion ends here, mostly on the worker's main thread (which also runs
  // the model), where Prisma's query compiler cost ~2 ms per ORM query against ~1 ms raw.
  // text and outputTokens unset keep the row's (as the ORM leaves an undefined field).
  const count = await db.$executeRaw`
    UPDATE "Completion" SET
      status = ${f.status}::"CompletionStatus",
      "finishReason" = ${f.finishReason}::"FinishReason",
      text = COALESCE(${f.text ?? null}::text, text),
      "outputTokens" = COALESCE(${f.outputTokens ?? null}::integer, "outputTokens"),
      error = ${f.error ?? null}::text,
      "finishedAt" = ${f.finishedAt}
    WHERE id = ${f.completionId} AND status = ANY(${[...ACTIVE_STATUSES]}::"CompletionStatus"[])`;
  return count > 0;
}

/** Step 2, in the shape of the batch engine's TokenSink.finish. */
export async function endStream(
  streams: Pick<TokenStreams, "append" | "lastIndex">,
  tenantId: string,
  completionId: string,
  tokens: number,
  finishReason: FinishReason,
): Promise<void> {
  const last = await streams.lastIndex(tenantId, completionId);
  const index = Math.max(tokens, last + 1);
  await streams.append(tenantId, completionId, [
    { version: 1, index, tokenId: -1, text: "", done: true, finishReason },
  ]);
}

/**
 * The three steps as the batch engine's ports name them (`store.finalise`, `tokens.finish`,
 * `admission.settle`), so the engine passes its own deps and the API passes `endSteps(...)`.
 */
export interface CompletionEndSteps {
  store: { finalise(f: Finalisation): Promise<unknown> };
  tokens: {
    finish(tenantId: string, completionId: string, tokens: number, finishReason: FinishReason): Promise<void>;
  };
  admission: { settle(tenantId: string, completionId: string, generatedTokens: number): Promise<void> };
}

/** The steps over PostgreSQL, token streams and admission. */
export function endSteps(r: Pick<EndResources, "db" | "streams" | "admission">): CompletionEndSteps {
  return {
    store: { finalise: (f) => finaliseRow(r.db, f) },
    tokens: {
      finish: (tenantId, completionId, tokens, reason) => endStream(r.streams, tenantId, completionId, tokens, reason),
    },
    admission: { settle: (tenantId, completionId, generated) => r.admission.settle(tenantId, completionId, generated) },
  };
}

export interface EndOptions {
  /** runs each step; the worker passes its lock-aware retry. Default: once. */
  retry?: <T>(op: () => Promise<T>) => Promise<T>;
  /**
   * Set: when steps 2–3 fail (Redis away, often why an enqueue failed), log to it, keep
   * retrying them in the background and return, so a request does not wait on Redis.
   * Unset: a failure is thrown.
   */
  redisInBackground?: { log: CompletionLogger };
}

const once = <T>(op: () => Promise<T>) => op();

/** Steps 1–3 in order. Resolves once the row is final (and Redis too, unless left to the background). */
export async function endCompletion(
  steps: CompletionEndSteps,
  end: CompletionEnd,
  opts: EndOptions = {},
): Promise<void> {
  const retry = opts.retry ?? once;
  const tokens = end.outputTokens ?? 0;
  await retry(() =>
    steps.store.finalise({
      completionId: end.completionId,
      status: statusOfFinish(end.finishReason),
      finishReason: end.finishReason,
      text: end.text,
      outputTokens: end.outputTokens,
      error: end.error,
      finishedAt: end.finishedAt,
    }),
  );
  const inRedis = async () => {
    await retry(() => steps.tokens.finish(end.tenantId, end.completionId, tokens, end.finishReason));
    await retry(() => steps.admission.settle(end.tenantId, end.completionId, tokens));
  };
  const background = opts.redisInBackground;
  if (!background) return inRedis();
  try {
    await inRedis();
  } catch (e) {
    background.log.warn(
      { err: e, completionId: end.completionId },
      "could not end the completion in Redis yet; retrying in the background",
    );
    void retryInBackground(background.log, end.completionId, inRedis);
  }
}

const BACKGROUND_ATTEMPTS = 60;

/** Backoff 250 ms × attempt, at most 5 s (about 4.5 min in all); the timers do not hold the process open. */
async function retryInBackground(log: CompletionLogger, completionId: string, op: () => Promise<void>): Promise<void> {
  const delayMs = (attempt: number) => Math.min(5000, 250 * attempt);
  // The immediate try has just failed: the first background attempt waits too.
  await sleep(delayMs(1), { unref: true });
  await withRetry(op, {
    attempts: BACKGROUND_ATTEMPTS,
    delayMs: (failed) => delayMs(failed + 1),
    jitter: false,
    unref: true,
  }).catch(() => log.error({ completionId }, "gave up ending a completion in Redis"));
}

/**
 * Ends a completion no worker holds — cancelled while waiting, or admitted but never
 * queued (ERROR). A waiting job may have run before (its worker died and the job went back
 * to its queue): a cancel ends it with what its stream holds — the row's text and tokens,
 * the usage (when any token was streamed) and the settle count what the client received.
 * A job never queued streamed nothing, so its stream is not read (Redis is often why the
 * enqueue failed). A request leaves the Redis steps to a background retry when Redis
 * fails them (`background`, the default); the reconciler wants the failure (its intent
 * then stays for its next pass, which survives this process).
 */
export async function endUnheld(
  r: EndResources & { streams: Pick<TokenStreams, "readAll">; clock: Clock; log: CompletionLogger },
  ref: { tenantId: string; completionId: string },
  finishReason: "CANCELLED" | "ERROR",
  error?: string,
  opts: { background?: boolean } = {},
): Promise<void> {
  const finishedAt = new Date(r.clock.nowMs());
  const out = finishReason === "CANCELLED" ? await streamedOrNothing(r, ref) : undefined;
  if (out && out.outputTokens > 0) await recordStreamedUsage(r.db, ref, out, finishedAt);
  return endCompletion(
    endSteps(r),
    { ...ref, finishReason, error, finishedAt, ...(out && out.outputTokens > 0 ? out : {}) },
    opts.background === false ? {} : { redisInBackground: { log: r.log } },
  );
}

/** The stream's output; nothing when Redis cannot be read now (logged: the row then keeps no text). */
async function streamedOrNothing(
  r: { streams: Pick<TokenStreams, "readAll">; log: CompletionLogger },
  ref: { tenantId: string; completionId: string },
): Promise<StreamedOutput | undefined> {
  try {
    return await streamedOutput(r.streams, ref.tenantId, ref.completionId);
  } catch (e) {
    r.log.warn({ err: e, completionId: ref.completionId }, "could not read the stream of an ended completion");
    return undefined;
  }
}
