import type { CompletionSpec } from "@lite/completions";
import { isTerminalStatus, withRetry, type FinishReason } from "@lite/core";
import { deriveRoutingSeed, type SequenceSpec } from "@lite/model";
import type { Logger } from "pino";
import type { EngineContext, Outcome } from "./engine-context";
import { errText } from "./err-text";
import { CompletionTrace } from "./completion-trace";
import { finish, finishFinalRow } from "./finalise";
import { kvTally } from "./kv-meter";
import type { EngineBatch, JobPayload, WorkHandle } from "./ports";

/**
 * Step 2: start one job. A first start runs from the job's payload; a replay or retry reads
 * the row, which may already be final (only the idempotent tail of finalisation is re-run).
 * A job refused before it runs (stalled too often, cancelled while queued, a tier of its
 * TierSet no longer granted, model failure) is finalised like a finished sequence with no
 * tokens. Otherwise the sequence joins its model's batch after the tokens its stream
 * already holds (fed with the prompt in one step, not decoded again).
 */
export async function startJob(ctx: EngineContext, handle: WorkHandle): Promise<void> {
  const log = ctx.deps.logger.child({ completionId: handle.completionId, tenantId: handle.tenantId });
  // The same completion dispatched again to this worker: its lock lapsed (e.g. Redis was
  // away) and the stalled check handed it back. The new dispatch supersedes the old one,
  // which replays from the stream's last index like any resumed job.
  const stale = ctx.running.get(handle.completionId);
  if (stale) {
    log.warn("re-dispatched while held here (its lock lapsed): restarting it from the stream");
    ctx.drop(stale, "re-dispatched");
  }
  const trace = CompletionTrace.dispatched(handle, ctx.now(), ctx.opts.workerId);
  if (trace) ctx.traces.set(handle, trace);
  const spec = await loadSpec(ctx, handle, log);
  if (!spec || spec.tenantId !== handle.tenantId) {
    log.error("job names no completion of its tenant; failing it");
    await handle.fail("completion row not found").catch(() => undefined);
    trace?.ended(ctx.now(), 0, "FAILED");
    return;
  }
  trace?.describe(spec);
  if (isTerminalStatus(spec.status)) {
    finishFinalRow(ctx, handle, spec);
    return;
  }
  const refused: Outcome = { handle, spec, tokenIds: [], text: [], expertCalls: {} };
  if (handle.deferredFailure) {
    log.error({ reason: handle.deferredFailure }, "job stalled too often; failing it");
    finish(ctx, refused, "ERROR", `stalled too often: ${handle.deferredFailure}`);
    return;
  }
  const [cancelled, resume, ungranted] = await withRetry(
    () =>
      Promise.all([
        ctx.deps.work.cancelled([{ tenantId: spec.tenantId, completionId: spec.completionId }]),
        ctx.deps.tokens.resumePoint(spec.tenantId, spec.completionId),
        ctx.deps.store.ungrantedTiers(spec.tenantId, spec.tierSet),
      ]),
    { onError: (e) => void log.warn({ err: errText(e) }, "start checks failed, retrying") },
  );
  // Before the cancel flag: revokeTier flags the live completions that use the tier, and a
  // queued one of them ends FAILED naming the tier, not CANCELLED.
  if (ungranted.length > 0) {
    refuseUngranted(ctx, refused, ungranted, log);
    return;
  }
  if (cancelled.has(spec.completionId)) {
    finish(ctx, refused, "CANCELLED");
    return;
  }
  // What an earlier attempt streamed is kept, not produced again: the sequence resumes after it.
  const prior: Outcome = {
    ...refused,
    tokenIds: resume.tokens.map((t) => t.tokenId),
    text: resume.tokens.map((t) => t.text),
  };
  if (resume.finishReason) {
    const reason = resume.finishReason;
    finish(ctx, prior, reason, reason === "ERROR" ? "failed in an earlier attempt" : undefined);
    return;
  }
  let started: EngineBatch | FinishReason;
  try {
    started = await addSequence(ctx, spec, prior.tokenIds);
  } catch (e) {
    log.error({ err: errText(e) }, "cannot run completion; failing it");
    finish(ctx, refused, "ERROR", errText(e));
    return;
  }
  // An earlier attempt streamed the last token but died before its final event.
  if (typeof started === "string") finish(ctx, prior, started);
  else hold(ctx, prior, started, log);
}

/**
 * A tier of the TierSet was revoked while the job waited (or between a crash and its replay):
 * the tier is never loaded for it. The job ends FAILED (ERROR), the error naming the tiers;
 * a job that never ran (row still QUEUED) bills nothing, a replay bills what it streamed.
 */
function refuseUngranted(ctx: EngineContext, refused: Outcome, tierIds: readonly string[], log: Logger): void {
  const error = `${tierIds.length > 1 ? "tiers" : "tier"} ${tierIds.join(", ")} no longer granted to the tenant`;
  log.warn({ tierIds }, "a tier of the job's TierSet was revoked; failing it unrun");
  finish(ctx, refused, "ERROR", error, { bill: refused.spec.status !== "QUEUED" });
}

/** The completion to run: from the payload on a first start (no row read on the hot path), else the row. */
function loadSpec(ctx: EngineContext, handle: WorkHandle, log: Logger): Promise<CompletionSpec | null> {
  const first = handle.firstStart;
  return withRetry(
    async (): Promise<CompletionSpec | null> =>
      first
        ? specFromPayload(first, await ctx.deps.store.tenantWeight(first.tenantId))
        : ctx.deps.store.load(handle.completionId),
    { onError: (e) => void log.warn({ err: errText(e) }, "load completion failed, retrying") },
  );
}

/** A QUEUED completion as the API enqueued it (the row holds the same values). */
export function specFromPayload(job: JobPayload, tenantWeight: number): CompletionSpec {
  return {
    completionId: job.completionId,
    tenantId: job.tenantId,
    tenantWeight,
    modelName: job.modelName,
    status: "QUEUED",
    prompt: job.prompt,
    promptTokens: Buffer.byteLength(job.prompt, "utf8"),
    maxTokens: job.maxTokens,
    temperature: job.temperature,
    seed: job.seed,
    mode: job.mode,
    tierSet: job.tierIds,
    costWeight: job.costWeight,
    createdAt: new Date(job.enqueuedAtMs),
  };
}

/**
 * Adds the sequence to its model's batch, seeded per tenant, resumed after the tokens an
 * earlier attempt streamed; or, when those already end it (its last was EOS, or maxTokens
 * of them), how it ended. Throws when the model cannot run it.
 */
async function addSequence(
  ctx: EngineContext,
  spec: CompletionSpec,
  resumeTokens: number[],
): Promise<EngineBatch | FinishReason> {
  const model = await ctx.deps.models.get(spec.modelName);
  if (resumeTokens.length > 0 && resumeTokens[resumeTokens.length - 1] === model.tokenizer.eos) return "STOP";
  if (resumeTokens.length >= spec.maxTokens) return "LENGTH";
  let batch = ctx.batches.get(spec.modelName);
  if (!batch) {
    batch = model.createBatch();
    ctx.batches.set(spec.modelName, batch);
  }
  const seq: SequenceSpec = {
    id: spec.completionId,
    tenantId: spec.tenantId,
    promptTokens: model.tokenizer.encode(spec.prompt),
    routingSeed: deriveRoutingSeed(spec.tenantId, spec.seed),
    tierIds: spec.tierSet,
    temperature: spec.temperature,
    maxTokens: spec.maxTokens,
    ...(resumeTokens.length > 0 ? { resumeTokens } : {}),
  };
  batch.add(seq);
  return batch;
}

/** The sequence is in its batch: mark the row RUNNING (in the background) and hold it. */
function hold(ctx: EngineContext, prior: Outcome, batch: EngineBatch, log: Logger): void {
  const { handle, spec } = prior;
  if (spec.status === "QUEUED") {
    // In the background: finalise only touches a live row, so a late RUNNING never wins.
    const at = new Date(ctx.now());
    void ctx.retrying(() => ctx.deps.store.markRunning(spec.completionId, at)).catch(() => undefined);
  }
  const resumeAfter = prior.tokenIds.length - 1;
  ctx.running.set(spec.completionId, {
    handle,
    spec,
    batch,
    order: ctx.order++,
    resumeAfter,
    tokenIds: prior.tokenIds,
    text: prior.text,
    expertCalls: {},
    firstEmitted: resumeAfter >= 0,
    kv: kvTally(ctx.now()),
  });
  ctx.wake?.();
  // One line per job held (a few per second at most): after a failure, the record of which
  // jobs a worker took.
  if (resumeAfter >= 0)
    log.info({ resumeAfter }, "resuming a re-dispatched completion after the tokens its stream holds");
  else log.info("holding a completion: its first step is next");
}
