/**
 * FairScheduler: per-tenant BullMQ queues and weighted fair dispatch across workers.
 *
 * enqueue(job, weight):
 *  1. add the job to the tenant's own queue (jobId = completionId: a duplicate is ignored);
 *  2. then mark the tenant ready in the `{sched}` index with its weight (scheduler-index.ts).
 * next(workerId):
 *  1. pick the ready tenant with the smallest virtual time (one Lua call on `{sched}`,
 *     O(log N) in tenants; it also charges a nominal dispatch cost and registers the tenant
 *     in the active index);
 *  2. move one job from that tenant's wait list to active with BullMQ's own atomic
 *     `moveToActive` under a fresh lock token (`getNextJob(token, { block: false })`, one
 *     Lua call on `{t:<tenant>}`). BullMQ pops each job for exactly one caller, so two
 *     dispatchers racing on one tenant never get the same job;
 *  3. nothing there: unmark the tenant by compare-and-delete on the ready epoch read in
 *     step 1 (every path that puts a job on a wait list marks the tenant ready *after* it,
 *     so the tenant stays ready whenever a job arrived meanwhile), and go back to step 1;
 *  4. re-register the tenant in the active index, and hand out the job; its lock is renewed
 *     in-process every lockDurationMs / 2 until complete/fail (autoExtendLocks).
 *  Steps 1 and 2 touch different hash slots, so they are two calls; the ordering rules above
 *  make the pair race-free without a cross-slot script (Redis Cluster stays possible).
 * charge(tenant, tokens, costWeight): vtime += tokens × costWeight / weight.
 * setTenantWeight(tenant, weight): the weight every later charge and pick uses (updateTenant).
 * cancel: set the cancel flag first, then remove a waiting job (a job that became active in
 *  between keeps the flag, which the worker polls between decode steps).
 * The stalled-job sweep (stalled-sweeper.ts) starts with the first `next` call, so API
 * processes, which only enqueue and cancel, never run it.
 */
import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Clock } from "@lite/core";
import type { RedisKeys } from "@lite/redis";
import { CompletionJob, JOB_CATALOG } from "./job-catalog";
import { DispatchedJobImpl, type DispatchedJob } from "./dispatched-job";
import { ReadyWake } from "./ready-wake";
import { ReplayMarks } from "./replay-marks";
import { SchedulerIndex } from "./scheduler-index";
import { StalledSweeper, type SweepResult } from "./stalled-sweeper";
import { TenantQueues } from "./tenant-queues";
import { HeartbeatKeeper } from "./heartbeat-keeper";
import { WorkerHeartbeats } from "./worker-heartbeats";

export interface FairSchedulerOptions {
  /** non-blocking client for the `{sched}` index and flags */
  redis: Redis;
  /** client for BullMQ (maxRetriesPerRequest: null); shared by every tenant queue, never duplicated */
  bullConnection: Redis;
  keys: RedisKeys;
  log?: Logger;
  /** lock of a dispatched job, ms; default 30000 */
  lockDurationMs?: number;
  /** period of the stalled-job sweep (and BullMQ's per-queue stalled-check throttle), ms; default 30000 */
  stalledIntervalMs?: number;
  /** stalls before a job comes back with `deferredFailure` set; default 1 */
  maxStalledCount?: number;
  /** nominal service charged at dispatch, cost-weighted tokens; default 1 (spreads a burst of
   *  `next` calls over tenants by weight before any real charge arrives) */
  dispatchChargeTokens?: number;
  /** tenant queue handles kept in memory (LRU); default 1000 */
  maxCachedQueues?: number;
  /** minimum age before an idle tenant leaves the active index, ms; default max(60000, 2 × lockDurationMs) */
  activeIndexGraceMs?: number;
  /** renew locks of jobs handed out by this scheduler every lockDurationMs / 2; default true */
  autoExtendLocks?: boolean;
  /**
   * Worker heartbeat TTL, ms (worker-heartbeats.ts); 0 or unset: off. On, every worker id
   * this scheduler dispatches for beats every heartbeatMs / BEATS_PER_TTL (10), and as often the
   * jobs of workers whose heartbeat expired are taken over (their locks released, the jobs
   * back on their wait lists) without waiting for their locks to lapse.
   */
  heartbeatMs?: number;
  /** how long a cancel flag (and a replay mark, replay-marks.ts) lives, s; default 86400 */
  cancelFlagTtlSeconds?: number;
  /** attempts per job including the first; default JOB_CATALOG.completion.attempts (3) */
  attempts?: number;
  /** time passed to the scripts instead of redis TIME (tests) */
  clock?: Clock;
  /**
   * Benchmark baseline only: every tenant's jobs go to ONE queue and are dispatched in
   * arrival order (weights, virtual time and excludeTenants are ignored). Default false.
   */
  singleQueue?: boolean;
}

/** The one queue of `singleQueue` mode (an id no tenant has: tenant ids start with `ten_`). */
export const SINGLE_QUEUE_ID = "_fifo";

export class FairScheduler {
  readonly index: SchedulerIndex;
  readonly lockDurationMs: number;
  private readonly queues: TenantQueues;
  private readonly sweeper: StalledSweeper;
  private readonly held = new Set<DispatchedJobImpl>();
  private readonly dispatchCharge: number;
  private readonly replays: ReplayMarks;
  private renewTimer?: NodeJS.Timeout;
  /** heartbeats on (heartbeat-keeper.ts) */
  private readonly keeper?: HeartbeatKeeper;
  /** the dispatch loop's wake-up on a tenant becoming ready (opened by the first waitForWork) */
  private readyWake?: ReadyWake;
  private closed = false;

  constructor(private readonly opts: FairSchedulerOptions) {
    this.lockDurationMs = opts.lockDurationMs ?? 30000;
    const stalledIntervalMs = opts.stalledIntervalMs ?? 30000;
    this.dispatchCharge = opts.dispatchChargeTokens ?? 1;
    this.index = new SchedulerIndex(opts.redis, opts.keys, opts.clock);
    this.replays = new ReplayMarks(opts.redis, opts.keys, opts.cancelFlagTtlSeconds ?? 86400);
    this.queues = new TenantQueues({
      connection: opts.bullConnection,
      keys: opts.keys,
      lockDurationMs: this.lockDurationMs,
      stalledIntervalMs,
      maxStalledCount: opts.maxStalledCount ?? 1,
      capacity: opts.maxCachedQueues ?? 1000,
    });
    this.sweeper = new StalledSweeper({
      redis: opts.redis,
      index: this.index,
      queues: this.queues,
      intervalMs: stalledIntervalMs,
      graceMs: opts.activeIndexGraceMs ?? Math.max(60000, 2 * this.lockDurationMs),
      log: opts.log,
    });
    if (opts.heartbeatMs && opts.heartbeatMs > 0) {
      const heartbeats = new WorkerHeartbeats(opts.redis, opts.keys, opts.heartbeatMs, opts.clock);
      this.keeper = new HeartbeatKeeper(heartbeats, this.held, this.sweeper, opts.log);
    }
  }

  /** Adds the job to its tenant's queue (duplicates by completionId are ignored) and marks the tenant ready. */
  async enqueue(job: CompletionJob, weight: number): Promise<void> {
    const parsed = CompletionJob.parse(job);
    if (!(weight > 0)) throw new Error(`weight must be positive, got ${weight}`);
    const c = JOB_CATALOG.completion;
    await this.queues.get(this.queueOf(parsed.tenantId)).queue.add(c.jobName, parsed, {
      jobId: parsed.completionId,
      attempts: this.opts.attempts ?? c.attempts,
      removeOnComplete: { age: c.keepFinishedSeconds },
      removeOnFail: { age: c.keepFinishedSeconds },
    });
    await this.ensureReady(parsed.tenantId, weight);
  }

  /** The queue a tenant's jobs live in: its own, or the single one of the baseline mode. */
  private queueOf(tenantId: string): string {
    return this.opts.singleQueue ? SINGLE_QUEUE_ID : tenantId;
  }

  /** The next job from the ready tenant with the smallest weighted virtual time, or null. */
  async next(workerId: string, opts: { excludeTenants?: string[] } = {}): Promise<DispatchedJob | null> {
    if (this.closed) return null;
    this.startBackground();
    const holder = this.keeper ? await this.keeper.holderId(workerId) : workerId;
    const skip = this.opts.singleQueue ? [] : (opts.excludeTenants ?? []);
    for (let attempt = 0; attempt < 10000; attempt++) {
      const pick = await this.index.pick(this.dispatchCharge, skip);
      if (!pick) return null;
      const token = `${holder}:${randomUUID()}`;
      const worker = this.queues.get(pick.tenantId).worker;
      const bullJob = await worker.getNextJob(token, { block: false });
      if (!bullJob) {
        await this.index.unready(pick.tenantId, pick.epoch);
        continue;
      }
      // No second registration in the active index here: sched-pick registered the tenant
      // a round trip ago, and a prune only removes a registration that has not changed since
      // it listed it. (A sched-active-touch here cost every dispatch one more round trip:
      // 2 ms at the median under the isolation flood.)
      const parsed = CompletionJob.safeParse(bullJob.data);
      if (!parsed.success) {
        this.opts.log?.error(
          { tenantId: pick.tenantId, jobId: bullJob.id },
          "job payload does not match CompletionJob; failed",
        );
        await bullJob.moveToFailed(new Error(`invalid CompletionJob payload: ${parsed.error.message}`), token, false);
        continue;
      }
      const d = new DispatchedJobImpl(parsed.data, pick.tenantId, bullJob, token, {
        lockDurationMs: this.lockDurationMs,
        release: (x) => this.held.delete(x),
        requeued: (tenantId) => this.index.markReady(tenantId).then(() => undefined),
      });
      this.held.add(d);
      return d;
    }
    return null;
  }

  /** virtual time += tokens × costWeight / weight */
  async charge(tenantId: string, tokens: number, costWeight: number): Promise<void> {
    if (!(tokens >= 0) || !(costWeight > 0)) throw new Error(`bad charge ${tokens} × ${costWeight}`);
    if (tokens === 0 || this.opts.singleQueue) return;
    await this.index.charge(tenantId, tokens * costWeight);
  }

  /**
   * charge() for every tenant of a decode step in one call: cost-weighted tokens per tenant
   * (tokens × costWeight), each added to its virtual time ÷ its weight.
   */
  async chargeMany(costWeightedTokens: ReadonlyMap<string, number>): Promise<void> {
    for (const [tenantId, tokens] of costWeightedTokens)
      if (!(tokens >= 0)) throw new Error(`bad charge ${tokens} for ${tenantId}`);
    if (this.opts.singleQueue) return;
    const nonzero = new Map([...costWeightedTokens].filter(([, tokens]) => tokens > 0));
    await this.index.chargeMany(nonzero);
  }

  /** Removes a waiting job, or flags a running one (the worker polls isCancelled). */
  async cancel(tenantId: string, completionId: string): Promise<"removed" | "running" | "absent"> {
    await this.opts.redis.set(
      this.opts.keys.cancelFlag(tenantId, completionId),
      "1",
      "EX",
      this.opts.cancelFlagTtlSeconds ?? 86400,
    );
    const handle = this.queues.get(this.queueOf(tenantId));
    const state = await handle.queue.getJobState(completionId);
    switch (state) {
      case "unknown":
      case "completed":
      case "failed":
        return "absent";
      case "active":
        return "running";
      default: {
        // waiting, delayed, prioritized, …: removeJob refuses a locked (active) job atomically.
        const removed = await handle.backend.remove(completionId, false);
        return removed ? "removed" : "running";
      }
    }
  }

  /**
   * Sets the cancel flags of some of a tenant's completions, touching no job: a worker stops
   * a running one at its next decode step (and checks the flag at job start). revokeTier uses
   * it for the tenant's live completions whose TierSet holds the revoked tier. One round trip.
   */
  async flagCancelled(tenantId: string, completionIds: readonly string[]): Promise<void> {
    if (completionIds.length === 0) return;
    const ttl = this.opts.cancelFlagTtlSeconds ?? 86400;
    const m = this.opts.redis.multi();
    for (const id of completionIds) m.set(this.opts.keys.cancelFlag(tenantId, id), "1", "EX", ttl);
    await m.exec();
  }

  /**
   * BullMQ Queue objects of the tenants whose queues exist (SchedulerIndex.knownTenants: waiting
   * work first), at most `limit`, for read-only operator views (bull-board). In the
   * single-queue baseline, the one queue. The handles share this scheduler's connection.
   */
  async inspectQueues(limit: number): Promise<Array<{ tenantId: string; queue: Queue }>> {
    const ids = this.opts.singleQueue ? [SINGLE_QUEUE_ID] : await this.index.knownTenants(limit);
    return ids.slice(0, Math.max(0, limit)).map((tenantId) => ({ tenantId, queue: this.queues.get(tenantId).queue }));
  }

  /**
   * Jobs in a tenant's own queue that are waiting (or delayed, prioritized) and running, for
   * dashboards; null in the single-queue baseline, where the one queue is everyone's.
   */
  async queueDepth(tenantId: string): Promise<{ waiting: number; active: number } | null> {
    if (this.opts.singleQueue) return null;
    const c = await this.queues.get(tenantId).queue.getJobCounts("waiting", "prioritized", "delayed", "active");
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0), active: c.active ?? 0 };
  }

  /** BullMQ's state of a completion's job ("waiting", "active", "completed", "failed", "unknown", …). */
  async jobState(tenantId: string, completionId: string): Promise<string> {
    return this.queues.get(this.queueOf(tenantId)).queue.getJobState(completionId);
  }

  /**
   * A tenant's weight changed (updateTenant): stored at once, so its waiting jobs are charged
   * tokens ÷ the new weight from the next charge on, without waiting for its next enqueue.
   * Always written (a tenant the index has not seen yet simply has its weight ready);
   * ignored in the single-queue baseline, which has no weights.
   */
  async setTenantWeight(tenantId: string, weight: number): Promise<void> {
    if (!(weight > 0)) throw new Error(`weight must be positive, got ${weight}`);
    if (this.opts.singleQueue) return;
    await this.index.setWeight(tenantId, weight);
  }

  /** Puts a tenant with waiting work (back) in the ready index; idempotent, the weight updated. */
  async ensureReady(tenantId: string, weight: number): Promise<void> {
    await this.index.markReady(this.queueOf(tenantId), this.opts.singleQueue ? 1 : weight);
  }

  /** Poison-job detection: a replay's start, as its `attempt`-th; returns its strikes (replay-marks.ts). */
  noteReplay(tenantId: string, completionId: string, progress: number, attempt: number): Promise<number> {
    return this.replays.noteReplay(tenantId, completionId, progress, attempt);
  }

  /** The `attempt`-th start of a replayed job is about to enter its first decode step (replay-marks.ts). */
  noteEntering(tenantId: string, completionId: string, attempt: number): Promise<void> {
    return this.replays.noteEntering(tenantId, completionId, attempt);
  }

  /** The `attempt`-th start of a replayed job completed its first decode step (replay-marks.ts). */
  noteStepped(tenantId: string, completionId: string, attempt: number): Promise<void> {
    return this.replays.noteStepped(tenantId, completionId, attempt);
  }

  async isCancelled(tenantId: string, completionId: string): Promise<boolean> {
    return (await this.opts.redis.exists(this.opts.keys.cancelFlag(tenantId, completionId))) === 1;
  }

  /**
   * Which of these completions of one tenant are flagged cancelled: one MGET of the tenant's
   * flags (they share its hash tag, so this holds on a Redis Cluster too). The worker asks
   * this every decode step for everything it holds, one call per tenant instead of one per
   * completion.
   */
  async cancelledAmong(tenantId: string, completionIds: readonly string[]): Promise<Set<string>> {
    if (completionIds.length === 0) return new Set();
    const flags = await this.opts.redis.mget(completionIds.map((id) => this.opts.keys.cancelFlag(tenantId, id)));
    return new Set(completionIds.filter((_, k) => flags[k] !== null));
  }

  /** One stalled-job sweep now (tests, operators); the background sweep runs after the first `next`. */
  sweepStalled() {
    return this.sweeper.sweepOnce();
  }

  /**
   * One heartbeat now, then the takeover of dead peers' jobs (heartbeat-keeper.ts); the
   * background loop runs both every heartbeatMs / BEATS_PER_TTL. Returns the jobs taken over,
   * or null when the heartbeat is off or Redis did not answer. Calls run one after another:
   * once one returns, every give-up and takeover begun before it is complete.
   */
  heartbeat(): Promise<SweepResult | null> {
    return this.keeper ? this.keeper.beat() : Promise.resolve(null);
  }

  /**
   * Resolves after `ms`, or at once when a tenant becomes ready anywhere (ready-wake.ts): the
   * dispatch loop's wait between looks.
   */
  waitForWork(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.readyWake ??= new ReadyWake(this.opts.redis, this.opts.keys.schedReadyChannel(), (e) =>
      this.opts.log?.warn({ err: e.message }, "ready-wake subscriber error"),
    );
    return this.readyWake.wait(ms);
  }

  /**
   * Stops lock renewal, heartbeats, the sweep and the ready-wake subscriber (a wait ends at
   * once). Jobs still held are not completed: their locks lapse.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.readyWake?.close();
    if (this.renewTimer) clearInterval(this.renewTimer);
    await this.keeper?.stop();
    await this.sweeper.stop();
    this.held.clear();
    await this.queues.close();
  }

  private startBackground(): void {
    this.sweeper.start();
    if (!this.closed) this.keeper?.start();
    if ((this.opts.autoExtendLocks ?? true) && !this.renewTimer) {
      this.renewTimer = setInterval(
        () => {
          for (const d of this.held) {
            d.extendLock().then(
              (ok) => {
                if (!ok) {
                  this.held.delete(d);
                  this.opts.log?.warn({ tenantId: d.tenantId, completionId: d.completionId }, "lock lost");
                }
              },
              (e) => this.opts.log?.warn({ err: e, completionId: d.completionId }, "lock renewal failed"),
            );
          }
        },
        Math.max(10, Math.floor(this.lockDurationMs / 2)),
      );
      this.renewTimer.unref();
    }
  }
}
