import { EngineContext, type EngineStats } from "./engine-context";
import type { BatchEngineDeps, BatchEngineOptions } from "./engine-options";
import { StatsReporter } from "./engine-stats";
import { errText } from "./err-text";
import { fillLoop } from "./fill";
import { sleep } from "@lite/core";
import { watchStalls } from "./stall-watch";
import { step } from "./step";

/**
 * The worker's continuous-batching loop. Each step lives in its own file; this class
 * glues them (the run loop, idling, locks, shutdown).
 *
 * 1. Fill (fill.ts, hold-caps.ts), a background loop beside the decode steps: while fewer
 *    than `batchSize + reserve` sequences are held, ask the dispatcher for the next job
 *    (the ready tenant with the smallest weighted virtual time, across workers), skipping
 *    tenants at their hold cap (their weighted share of the batch plus one spare), so the
 *    reserve is always open to another tenant's work.
 * 2. Start a job (job-start.ts): a first start runs from the job's payload, a replay or
 *    retry loads its row; a final row (the job was replayed after this or another worker
 *    finished it) only re-runs the idempotent tail of finalisation. Otherwise add the
 *    sequence to the model's DecodeBatch with its routing seed
 *    deriveRoutingSeed(tenant, seed), resumed after the tokens its stream already holds
 *    (fed with the prompt in one step; they are not sampled again).
 * 3. Step (step.ts): the slot allocator gives at most `batchSize` slots by per-tenant
 *    weighted virtual tokens (token-level fairness, see slot-allocator.ts); the step
 *    advances those sequences one token. Chosen sequences that have not run yet take a
 *    small step of their own first.
 * 4. Flush the step (step.ts), overlapping the next step's compute and retrying until it
 *    succeeds: append the new tokens of every completion (one round trip),
 *    Admission.progress, and charge the dispatcher the cost-weighted tokens per tenant;
 *    in the same round trip ask which held completions were cancelled: cancellation is
 *    observed within one step, and the token a cancelled sequence produced meanwhile is
 *    dropped.
 * 5. A finished (or cancelled, or failed) sequence leaves the batch and is finalised in
 *    the background (finalise.ts): usage events (idempotent) → row (status, text, finish
 *    reason) → stream's final event → Admission.settle → job complete. Each part retries
 *    with backoff; the job's lock keeps being extended until it completes, so a job is
 *    never lost while PostgreSQL or Redis is briefly away.
 * 6. Locks of held jobs are renewed by the scheduler in the background until complete
 *    or fail. A job whose lock was lost (this worker stalled and another took it) is
 *    dropped here; determinism makes the other worker's output identical.
 * 7. stop(): take no new jobs, run held sequences to the end (up to `shutdownGraceMs`;
 *    after it, leave the rest: their locks lapse and another worker resumes them), wait
 *    for finalisations (also bounded by the grace), return.
 * 8. Beside the loop, on a timer (stall-watch.ts): held sequences that streamed no token for
 *    `stallWarnMs` are reported with where the loop is and what each one waits for.
 */

export class BatchEngine {
  private readonly ctx: EngineContext;
  /** the background filler loop */
  private filler?: Promise<void>;
  private loop?: Promise<void>;

  constructor(opts: BatchEngineOptions, deps: BatchEngineDeps) {
    this.ctx = new EngineContext(opts, deps);
  }

  /** steps and tokens, for the process' own logs and the overhead benchmark */
  get stats(): Readonly<EngineStats> {
    return this.ctx.stats;
  }

  /** sequences held (in a decode batch) */
  get held(): number {
    return this.ctx.running.size;
  }

  /**
   * Whether a decode step wants the JS thread: some held sequence may step (is neither parked
   * on an expert load nor holding its token for the timing defence). Expert loads, which
   * take the same thread, are rationed only then (libs/cache LoadGovernor).
   */
  get wantsThread(): boolean {
    for (const r of this.ctx.running.values()) if (!r.batch.waiting(r.spec.completionId)) return true;
    return false;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops taking jobs, lets running sequences finish (bounded), waits for finalisations. */
  async stop(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx.stopping) {
      ctx.stopping = true;
      ctx.stopDeadline = ctx.now() + ctx.opts.shutdownGraceMs;
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const ctx = this.ctx;
    const reporter = new StatsReporter(ctx.stats, ctx.deps.logger);
    const unwatch = watchStalls(ctx);
    while (true) {
      reporter.maybeLog(ctx.running.size);
      if (ctx.stopping && (ctx.running.size === 0 || ctx.now() > ctx.stopDeadline)) break;
      try {
        // The filler runs beside the decode steps (its round trips overlap the compute).
        if (!ctx.stopping) this.filler ??= fillLoop(ctx);
        this.dropLostJobs();
        if (ctx.running.size === 0) {
          await ctx.flushed();
          await this.idle();
          continue;
        }
        await step(ctx);
      } catch (e) {
        // Transient (Redis/PostgreSQL away): nothing is lost, the loop retries.
        ctx.deps.logger.warn({ err: errText(e) }, "engine loop error, retrying");
        await sleep(200);
      }
    }
    unwatch();
    await this.windDown();
  }

  /** Nothing held: wait until a job starts (the filler wakes us) or 50 ms pass. */
  private async idle(): Promise<void> {
    const ctx = this.ctx;
    const t0 = performance.now();
    ctx.enter("idle");
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 50);
      ctx.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    ctx.wake = undefined;
    ctx.stats.idleMs += performance.now() - t0;
    ctx.enter("between");
  }

  /**
   * Step 7, after the loop: the last flush, the filler, then leave what still runs (the grace
   * is over: their locks lapse and another worker resumes them) and wait for finalisations.
   */
  private async windDown(): Promise<void> {
    const ctx = this.ctx;
    const log = ctx.deps.logger;
    await ctx.flushed().catch(() => undefined);
    if (this.filler) await this.filler;
    if (ctx.running.size > 0) {
      log.warn({ left: ctx.running.size }, "shutdown grace over: leaving running jobs to be resumed by another worker");
      for (const r of [...ctx.running.values()]) ctx.drop(r, "shutdown grace over");
    }
    // Finalisations retry while PostgreSQL or Redis is away, but not past the grace: what is
    // left stays in its queue and is finished (idempotently) by the next worker.
    const left = Math.max(0, ctx.stopDeadline - ctx.now());
    const waited = new AbortController(); // so the timer does not outlive the wait
    await Promise.race([
      Promise.allSettled([...ctx.finalisations]),
      sleep(Math.min(left, 60000), { signal: waited.signal }),
    ]);
    waited.abort();
    if (ctx.finalisations.size > 0) {
      log.warn(
        { left: ctx.finalisations.size },
        "finalisations still retrying at shutdown: leaving them to the next worker",
      );
    }
  }

  /**
   * Step 6: the scheduler renews locks in the background; a job whose lock was lost (this
   * worker stalled and another took it over) is dropped here.
   */
  private dropLostJobs(): void {
    const ctx = this.ctx;
    for (const r of [...ctx.running.values()]) {
      if (!r.handle.lockLost) continue;
      ctx.deps.logger.warn(
        { completionId: r.spec.completionId },
        "lost the job's lock (another worker owns it): dropping it here",
      );
      ctx.drop(r, "lock lost");
    }
  }
}
