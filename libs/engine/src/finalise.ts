import { endCompletion, receivedOutput, type CompletionSpec, type StreamedOutput } from "@lite/completions";
import { statusOfFinish, type FinishReason } from "@lite/core";
import type { EngineContext, Outcome } from "./engine-context";
import { kvByteSecondsAtEnd } from "./kv-meter";
import { errText } from "./err-text";
import type { WorkHandle } from "./ports";

export interface FinishOptions {
  /** false: record no usage (a job refused by the operator before it ever ran); default true */
  bill?: boolean;
}

/**
 * Step 5: finalise a sequence that left the batch (or a job refused before it ran), in the
 * background: what the client received (`received`) → usage events (idempotent; none when
 * `bill` is false) →
 * libs/completions `endCompletion` (row: status, text, finish reason → the stream's final
 * event → Admission.settle) → job complete (or fail). Each part retries until it succeeds;
 * the last stops once the job's lock is lost (the new holder redoes the tail).
 */
export function finish(
  ctx: EngineContext,
  r: Outcome,
  reason: FinishReason,
  error?: string,
  opts: FinishOptions = {},
): void {
  const { spec, handle } = r;
  const { deps } = ctx;
  deps.metrics?.completionsFinished.inc({ tenant: spec.tenantId, reason });
  const kvByteSeconds = kvByteSecondsAtEnd(r, ctx.now());
  const trace = ctx.traces.get(handle);
  trace?.ending(ctx.now(), reason);
  track(ctx, handle, async () => {
    const { outputTokens, text } = await received(ctx, r, reason);
    const finishedAt = new Date(ctx.now());
    if (opts.bill ?? true) {
      await ctx.retrying(() =>
        deps.usage.record({
          tenantId: spec.tenantId,
          completionId: spec.completionId,
          inputTokens: spec.promptTokens,
          outputTokens,
          expertCallsByTier: r.expertCalls,
          kvByteSeconds,
          mode: spec.mode,
          occurredAt: finishedAt,
        }),
      );
    }
    const end = { tenantId: spec.tenantId, completionId: spec.completionId, finishReason: reason };
    await endCompletion(deps, { ...end, text, outputTokens, error, finishedAt }, { retry: (op) => ctx.retrying(op) });
    const status = statusOfFinish(reason);
    const failed = status === "FAILED";
    await ctx.retrying(() => (failed ? handle.fail(error ?? "failed") : handle.complete()), handle);
    trace?.ended(ctx.now(), outputTokens, status);
  });
}

/**
 * The output the completion ends with, which the row, the usage and the settle all count:
 * what this worker holds (a resumed job starts with the tokens its stream held); but a
 * completion ended CANCELLED or ERROR before it started here (stalled too often, cancelled
 * at start, its model gone) holds none, so then the stream is read and, holding more,
 * wins: what the client received.
 */
async function received(ctx: EngineContext, r: Outcome, reason: FinishReason): Promise<StreamedOutput> {
  const own = { outputTokens: r.tokenIds.length, text: r.text.join("") };
  if (statusOfFinish(reason) === "COMPLETED") return own;
  const { tenantId, completionId } = r.spec;
  return receivedOutput(own, await ctx.retrying(() => ctx.deps.tokens.streamed(tenantId, completionId)));
}

/**
 * A job whose row is already final (replayed after this or another worker finished it):
 * only the idempotent tail (stream end, settle, complete) may be missing.
 */
export function finishFinalRow(ctx: EngineContext, handle: WorkHandle, spec: CompletionSpec): void {
  const { deps } = ctx;
  const outputTokens = spec.outputTokens ?? 0;
  const trace = ctx.traces.get(handle);
  trace?.ending(ctx.now(), spec.finishReason ?? "ERROR");
  track(ctx, handle, async () => {
    await ctx.retrying(() =>
      deps.tokens.finish(spec.tenantId, spec.completionId, outputTokens, spec.finishReason ?? "ERROR"),
    );
    await ctx.retrying(() => deps.admission.settle(spec.tenantId, spec.completionId, outputTokens));
    await ctx.retrying(() => handle.complete(), handle);
    trace?.ended(ctx.now(), outputTokens, spec.status);
  });
}

/** Runs a finalisation in the background; stop() waits for it (up to its grace). */
function track(ctx: EngineContext, handle: WorkHandle, work: () => Promise<void>): void {
  ctx.finalising.set(handle.completionId, handle);
  const p = work()
    .catch((e) => {
      ctx.traces.get(handle)?.abandoned(ctx.now());
      ctx.deps.logger.error(
        { completionId: handle.completionId, err: errText(e) },
        "finalisation gave up; the job stays queued",
      );
    })
    .finally(() => {
      ctx.finalising.delete(handle.completionId);
      ctx.finalisations.delete(p);
    });
  ctx.finalisations.add(p);
}
