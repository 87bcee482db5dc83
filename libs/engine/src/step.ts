import type { StepOutput } from "@lite/model";
import type { EngineContext, Running } from "./engine-context";
import { finish } from "./finalise";
import { heldByTenant, tenantsAtHoldCap } from "./hold-caps";
import { sampleKv } from "./kv-meter";
import type { CompletionRef, EngineBatch, TokenOut } from "./ports";
import { sleep, type FinishReason } from "@lite/core";

/** What one decode step produced, as its flush sends it. */
interface StepResult {
  appends: Array<CompletionRef & { tokens: TokenOut[] }>;
  progress: Array<CompletionRef & { generatedTokens: number }>;
  /** cost-weighted tokens per tenant */
  charges: Map<string, number>;
  /** sequences that ended in this step; `error` when the model could not go on with one */
  finished: Array<{ r: Running; reason: FinishReason; error?: string }>;
}

/**
 * When every held sequence waits (parked on an expert load, or a token held by the timing
 * defence), the loop sleeps until one may step, a job starts, or this many ms pass (then it
 * looks again: cancellations, lost locks, stop).
 */
const ALL_WAITING_POLL_MS = 50;

/**
 * Catch-up rows (a replayed job's prompt + the tokens its stream already holds, fed in its
 * first step here) one step takes, beyond its first replay: replays resume one after another
 * (shortest first), each streaming its next token as soon as its own KV is rebuilt, instead
 * of all of them after the whole takeover's replay; short ones still share a step.
 */
export const CATCH_UP_ROWS_PER_STEP = 256;

/**
 * Steps 3–4: one decode step. The slot allocator decides who advances (token-level
 * fairness); sequences it chose that have not run yet take a small step of their own first.
 * A sequence that waits (its batch parked it on an expert load, or holds its token for the
 * timing defence) gets no slot and is not charged; when all of them wait, the step waits
 * for one (or for a new job) instead of spinning.
 */
export async function step(ctx: EngineContext): Promise<void> {
  const all = [...ctx.running.values()].filter((r) => !r.batch.waiting(r.spec.completionId));
  if (all.length === 0) {
    await waitForReady(ctx);
    return;
  }
  const chosen = inTurn(
    ctx,
    ctx.allocator.pick(
      all.map((r) => ({
        id: r.spec.completionId,
        tenantId: r.spec.tenantId,
        weight: r.spec.tenantWeight,
        cost: r.spec.costWeight,
        order: r.order,
      })),
      ctx.opts.batchSize,
    ),
  );
  // First tokens first: chosen sequences that have not run yet, of a tenant below its hold
  // cap here (hold-caps.ts: an interactive tenant, or one just arrived), take a small step of
  // their own (a few ms) before the rest, so their time to first token does not pay for a
  // full batch. A tenant at its cap (a backlogged one: the filler keeps it there, so this is
  // its next completion) joins the full step: a small step per completion was ~11% of the
  // overhead bench's steps. Until this rule, any tenant already streaming here joined the full
  // step, so a light tenant's request that arrived while its previous one streamed waited for
  // the heavy tenant's whole batch. Who advances, and by how much, is the allocator's choice.
  if (ctx.opts.firstTokenSteps) {
    const fresh = firstStepOnes(ctx, chosen);
    if (fresh.length > 0 && fresh.length < chosen.length) {
      const freshSet = new Set(fresh);
      await advance(ctx, fresh, false);
      await advance(
        ctx,
        chosen.filter((id) => !freshSet.has(id) && ctx.running.has(id)),
        true,
      );
      return;
    }
  }
  await advance(ctx, chosen, true);
}

/**
 * The chosen sequences that take a first-token step: not run yet, of a tenant below its hold
 * cap. The caps are worked out only in a step that has such a sequence (most have none).
 * A tenant's jobs still being started count towards its cap: a backlogged tenant two of whose
 * completions ended together is refilled with two, and the first one held is not a light
 * tenant's request. (The overhead bench still has ~50 such steps in ~850 per 10 s: its
 * tenants keep only two completions queued beyond the five they hold, so after two finish
 * together a tenant is briefly below its cap with nothing left to take.)
 */
function firstStepOnes(ctx: EngineContext, chosen: string[]): string[] {
  return belowHoldCap(
    ctx,
    chosen.filter((id) => notStarted(ctx.running.get(id)!)),
  );
}

/** Those of these held sequences whose tenant is below its hold cap. */
function belowHoldCap(ctx: EngineContext, notYet: string[]): string[] {
  if (notYet.length === 0) return notYet;
  const atCap = tenantsAtHoldCap(
    ctx.opts.batchSize,
    heldByTenant([...ctx.running.values()].map((r) => r.spec)),
    ctx.startingByTenant,
  );
  return notYet.filter((id) => !atCap.has(ctx.running.get(id)!.spec.tenantId));
}

/**
 * The chosen sequences that step now: all but the replays past this step's catch-up budget
 * (CATCH_UP_ROWS_PER_STEP; the shortest replay always goes). The others keep their turn: they
 * are not advanced nor charged, and the allocator picks them again at the next step. Which
 * step a replay runs in changes nothing in its tokens (they depend on no batch).
 */
function inTurn(ctx: EngineContext, chosen: string[]): string[] {
  const replays = chosen
    .map((id) => ctx.running.get(id)!)
    .filter((r) => !r.entered && r.resumeAfter >= 0)
    .map((r) => ({ id: r.spec.completionId, rows: catchUpRows(r), order: r.order }))
    .sort((a, b) => a.rows - b.rows || a.order - b.order);
  if (replays.length < 2) return chosen;
  const later = new Set<string>();
  let rows = 0;
  for (const [i, r] of replays.entries()) {
    rows += r.rows;
    if (i > 0 && rows > CATCH_UP_ROWS_PER_STEP) later.add(r.id);
  }
  return chosen.filter((id) => !later.has(id));
}

/** The rows a replay's first step feeds: BOS, its prompt and the tokens its stream held. */
function catchUpRows(r: Running): number {
  return 1 + r.spec.promptTokens + r.resumeAfter + 1;
}

/** A sequence that has produced no token here and resumes none (a replay resumes). */
function notStarted(r: Running): boolean {
  return r.tokenIds.length === 0 && r.resumeAfter < 0;
}

/**
 * One decode step over these held sequences, then its flush (overlapping the next step).
 * With `arrivals`, requests held during the step's pass take their first step between its
 * layers (stepArrivals).
 */
async function advance(ctx: EngineContext, chosen: string[], arrivals: boolean): Promise<void> {
  if (chosen.length === 0) return;
  await announceFirstSteps(ctx, chosen);
  const outputs = await decode(ctx, chosen, arrivals && ctx.opts.firstTokenSteps);
  sampleKv(ctx);
  noteSurvivedSteps(ctx, chosen);
  const result = collect(ctx, outputs);
  // Finished sequences leave the batch now; they are finalised once their tokens are flushed.
  for (const { r } of result.finished) ctx.detach(r);
  // The previous step's flush ran during this step's compute. Its cancel check names
  // completions whose token from THIS step must not be emitted: drop it, end them.
  ctx.enter("flush");
  const cancelled = await ctx.flushed();
  ctx.enter("between");
  dropCancelled(ctx, result, cancelled);
  startFlush(ctx, result);
  ctx.allocator.retain(new Set([...ctx.running.values()].map((r) => r.spec.tenantId)));
  if (ctx.opts.stepDelayMs) await sleep(ctx.opts.stepDelayMs);
}

/**
 * Every held sequence waits. First the previous flush's cancel check is applied (a cancelled
 * sequence leaves even while parked), then the loop sleeps until a batch has a sequence that
 * may step, a job starts (`ctx.wake`), or ALL_WAITING_POLL_MS pass; then a flush with no
 * tokens asks again which held completions were cancelled.
 */
async function waitForReady(ctx: EngineContext): Promise<void> {
  ctx.enter("flush");
  dropCancelled(ctx, emptyResult(), await ctx.flushed());
  ctx.enter("waiting");
  const t0 = performance.now();
  const batches = new Set([...ctx.running.values()].map((r) => r.batch));
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      if (ctx.wake === done) ctx.wake = undefined;
      resolve();
    };
    const timer = setTimeout(done, ALL_WAITING_POLL_MS);
    ctx.wake = done;
    for (const b of batches) void b.whenReady().then(done);
  });
  ctx.stats.idleMs += performance.now() - t0;
  ctx.enter("between");
  startFlush(ctx, emptyResult());
}

function emptyResult(): StepResult {
  return { appends: [], progress: [], charges: new Map(), finished: [] };
}

/** Sequences about to take their first step here say so first (a no-op but for replays). */
async function announceFirstSteps(ctx: EngineContext, chosen: string[]): Promise<void> {
  const first: Promise<void>[] = [];
  for (const id of chosen) {
    const r = ctx.running.get(id)!;
    if (r.entered) continue;
    r.entered = true;
    ctx.traces.get(r.handle)?.stepping(ctx.now(), r.resumeAfter + 1);
    if (r.handle.entering) first.push(r.handle.entering().catch(() => undefined));
  }
  if (first.length > 0) {
    ctx.enter("entering");
    await Promise.all(first);
    ctx.enter("between");
  }
}

/**
 * The attempt's first step returned, whether it yielded a token or parked the sequence on a
 * cold expert: computing it did not kill the worker (poison-job detection; the handle notes
 * it only for replays). Noted at the return, not at the first token: a worker killed while
 * a replay waits on a load is not that job's fault, and on a loaded machine loads take long
 * enough for kills to land there (a crash campaign's completion failed as poison so).
 */
function noteSurvivedSteps(ctx: EngineContext, chosen: string[]): void {
  for (const id of chosen) {
    const r = ctx.running.get(id);
    if (!r || r.stepped || !r.entered) continue;
    r.stepped = true;
    r.handle.stepped?.();
  }
}

/** Runs the model: one step per batch (one per model) over the chosen sequences. */
async function decode(ctx: EngineContext, chosen: string[], arrivals: boolean): Promise<StepOutput[]> {
  const byBatch = new Map<EngineBatch, string[]>();
  for (const id of chosen) {
    const r = ctx.running.get(id)!;
    const list = byBatch.get(r.batch);
    if (list) list.push(id);
    else byBatch.set(r.batch, [id]);
  }
  const started = performance.now();
  const outputs: StepOutput[] = [];
  ctx.enter("decode");
  const inStep = new Set(chosen);
  for (const [batch, ids] of byBatch)
    outputs.push(
      ...(await batch.step(ids, arrivals ? { betweenLayers: () => stepArrivals(ctx, batch, inStep) } : undefined)),
    );
  ctx.enter("between");
  const stepMs = performance.now() - started;
  ctx.stats.steps++;
  ctx.stats.stepMs += stepMs;
  ctx.deps.metrics?.decodeStepSeconds.observe(stepMs / 1000);
  return outputs;
}

/**
 * A full step's betweenLayers hook (libs/model StepOptions): the requests held since the step
 * began that have not run yet, of a tenant below its hold cap (those a first-token step
 * takes), take their first step now, between two layers of the step's pass, and their tokens
 * are flushed at once. Before, such a request waited for the whole step in progress: under
 * the isolation bench's flood, 8 / 13 / 17 ms (p50 / p90 / p99) between being held and its
 * first step, against 1 / 1 / 3 alone (an instrumented run). Its step is its own pass over
 * its rows: its tokens are those of any other batch. The allocator is charged for them as
 * for any step; its cancel check joins the one the step in progress applies.
 */
async function stepArrivals(ctx: EngineContext, batch: EngineBatch, inStep: ReadonlySet<string>): Promise<void> {
  const candidates: string[] = [];
  for (const [id, r] of ctx.running)
    if (r.batch === batch && !inStep.has(id) && !r.entered && notStarted(r) && batch.waiting(id) === undefined)
      candidates.push(id);
  const fresh = belowHoldCap(ctx, candidates);
  if (fresh.length === 0) return;
  await announceFirstSteps(ctx, fresh);
  const outputs = await batch.step(fresh);
  ctx.stats.arrivalSteps++;
  noteSurvivedSteps(ctx, fresh);
  const result = collect(ctx, outputs);
  for (const { r } of result.finished) ctx.detach(r);
  startFlush(ctx, result);
}

/**
 * Adds each output to its sequence and charges the allocator. A resumed sequence's first
 * output follows what its stream already holds. An output with an error (an expert the
 * sequence needs could not be loaded) carries no token: the completion ends ERROR with it;
 * a LENGTH output without a token (tokenId -1: the sequence outgrew its tenant's KV quota)
 * ends it with the tokens it has.
 */
function collect(ctx: EngineContext, outputs: StepOutput[]): StepResult {
  const result = emptyResult();
  const nowMs = ctx.now();
  for (const o of outputs) {
    const r = ctx.running.get(o.id);
    if (!r) continue;
    if (o.error !== undefined) {
      result.finished.push({ r, reason: "ERROR", error: o.error });
      continue;
    }
    if (o.tokenId < 0) {
      // No token: it outgrew its tenant's KV quota (libs/model kv-ledger.ts) and ends with
      // the tokens it already produced.
      if (o.finished) result.finished.push({ r, reason: o.finishReason ?? "LENGTH" });
      continue;
    }
    const { tenantId, completionId } = r.spec;
    r.tokenIds.push(o.tokenId);
    r.text.push(o.text);
    ctx.traces.get(r.handle)?.token(nowMs);
    for (const [tier, n] of Object.entries(o.expertCalls)) r.expertCalls[tier] = (r.expertCalls[tier] ?? 0) + n;
    const cost = r.spec.costWeight;
    ctx.allocator.charge(tenantId, cost, r.spec.tenantWeight);
    result.charges.set(tenantId, (result.charges.get(tenantId) ?? 0) + cost);
    result.appends.push({ tenantId, completionId, tokens: [{ index: o.index, tokenId: o.tokenId, text: o.text }] });
    result.progress.push({ tenantId, completionId, generatedTokens: o.index + 1 });
    if (!r.firstEmitted) {
      r.firstEmitted = true;
      ctx.deps.metrics?.ttftSeconds.observe(
        { tenant: tenantId },
        Math.max(0, nowMs - r.spec.createdAt.getTime()) / 1000,
      );
    }
    if (o.finished) result.finished.push({ r, reason: o.finishReason ?? "LENGTH" });
  }
  return result;
}

/**
 * Completions the previous flush found cancelled: their token from this step is dropped
 * (not appended, not counted), they leave the batch and end CANCELLED — also one that
 * finished in this very step.
 */
function dropCancelled(ctx: EngineContext, result: StepResult, cancelled: ReadonlySet<string>): void {
  const { appends, progress, finished } = result;
  for (const id of cancelled) {
    const r = ctx.running.get(id) ?? finished.find((f) => f.r.spec.completionId === id)?.r;
    if (!r) continue;
    const k = appends.findIndex((a) => a.completionId === id);
    if (k >= 0) {
      appends.splice(k, 1);
      const p = progress.findIndex((x) => x.completionId === id);
      if (p >= 0) progress.splice(p, 1);
      r.tokenIds.pop();
      r.text.pop();
    }
    const f = finished.findIndex((x) => x.r === r);
    if (f >= 0) finished.splice(f, 1);
    else ctx.detach(r);
    finish(ctx, r, "CANCELLED");
  }
}

/**
 * This step's flush, one round trip, overlapping the next step's compute: tokens,
 * admission progress, the dispatcher's charge, and which held completions were cancelled.
 * Retried until it succeeds; the sequences that finished in this step are finalised after
 * it, so their final event follows their last token.
 */
function startFlush(ctx: EngineContext, result: StepResult): void {
  const { appends, progress, charges, finished } = result;
  const { deps } = ctx;
  const live = [...ctx.running.values()];
  const t0 = performance.now();
  const flush = ctx
    .retrying(() =>
      Promise.all([
        Promise.all([
          appends.length > 0 ? deps.tokens.append(appends) : undefined,
          progress.length > 0 ? deps.admission.progress(progress) : undefined,
          charges.size > 0 ? deps.work.charge(charges) : undefined,
        ]),
        live.length > 0
          ? deps.work.cancelled(live.map((r) => ({ tenantId: r.spec.tenantId, completionId: r.spec.completionId })))
          : new Set<string>(),
      ]),
    )
    .then(([, c]) => {
      ctx.stats.flushMs += performance.now() - t0;
      ctx.stats.tokens += appends.length;
      if (deps.metrics) {
        // one update per tenant and step, not per token (the step's JS thread runs the model)
        const perTenant = new Map<string, number>();
        for (const a of appends) perTenant.set(a.tenantId, (perTenant.get(a.tenantId) ?? 0) + a.tokens.length);
        for (const [tenant, n] of perTenant) deps.metrics.tokensGenerated.inc({ tenant }, n);
      }
      for (const { r, reason, error } of finished) finish(ctx, r, reason, error);
      return c;
    });
  // A flush started between a step's layers (stepArrivals) joins the one the step will wait
  // for: the step applies both cancel checks.
  const earlier = ctx.pendingFlush;
  ctx.pendingFlush = earlier ? Promise.all([earlier, flush]).then(([a, b]) => new Set([...a, ...b])) : flush;
}
