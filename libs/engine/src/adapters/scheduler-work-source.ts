import type { Logger } from "pino";
import type { DispatchedJob, FairScheduler } from "@lite/scheduler";
import type { WorkHandle, WorkSource } from "../ports";

/** A libs/scheduler DispatchedJob as the engine's WorkHandle. */
class DispatchedHandle implements WorkHandle {
  constructor(
    private readonly d: DispatchedJob,
    /** set when this start is judged a poison job's (it crashed workers without progress) */
    private readonly poison: string | null = null,
    private readonly notes?: { entering(): Promise<void>; stepped(): void },
  ) {}
  async entering() {
    await this.notes?.entering();
  }
  stepped() {
    this.notes?.stepped();
  }
  get completionId() {
    return this.d.completionId;
  }
  get tenantId() {
    // the job's tenant (in the single-queue baseline the dispatched queue is not a tenant)
    return this.d.job.tenantId;
  }
  get lockLost() {
    return this.d.lockLost;
  }
  get deferredFailure() {
    return this.poison ?? this.d.deferredFailure;
  }
  get traceparent() {
    return this.d.job.traceparent;
  }
  get enqueuedAtMs() {
    return this.d.job.enqueuedAtMs;
  }
  get firstStart() {
    // attemptsStarted counts this start: 1 means no worker ran the job before
    return this.d.attemptsStarted <= 1 && this.d.attemptsMade === 0 ? this.d.job : undefined;
  }
  complete() {
    return this.d.complete({ completionId: this.d.completionId });
  }
  fail(reason: string) {
    return this.d.fail(new Error(reason), false);
  }
}

export interface PoisonCheck {
  /** the completion's last streamed index, -1 for none (libs/stream lastIndex) */
  progressOf(tenantId: string, completionId: string): Promise<number>;
  /** replays in a row that died before their first decode step that make a job poison (WORKER_POISON_STARTS) */
  startsWithoutProgress: number;
  log?: Pick<Logger, "warn">;
}

/**
 * A replayed job (its worker died or its lock lapsed) is poison when `startsWithoutProgress`
 * replays in a row died inside their first decode step with no token streamed: it kills
 * every worker it reaches while it is computed. A job whose workers die for other reasons
 * completes steps (its replay, new tokens) between the deaths, or is still waiting for a
 * slot when one dies, and runs on however many there are (libs/scheduler noteReplay).
 */
async function poisonOf(
  scheduler: Pick<FairScheduler, "noteReplay">,
  d: DispatchedJob,
  check: PoisonCheck,
): Promise<string | null> {
  if (d.attemptsStarted <= 1 || d.deferredFailure) return null;
  const { tenantId, completionId } = d.job;
  const progress = await check.progressOf(tenantId, completionId);
  const strikes = await scheduler.noteReplay(tenantId, completionId, progress, d.attemptsStarted);
  return strikes >= check.startsWithoutProgress
    ? `poison: ${strikes} replays in a row ended with their worker before one decode step`
    : null;
}

/**
 * poisonOf, or null (run it) when its marks cannot be read or written. The job is already
 * held here under this worker's lock, renewed while held: a handle lost to a throw would be
 * a job that no worker ever runs and no sweep ever returns. A strike not counted only delays
 * poison detection; a worker crash must never fail a completion.
 */
async function poisonOrRun(
  scheduler: Pick<FairScheduler, "noteReplay">,
  d: DispatchedJob,
  check: PoisonCheck,
): Promise<string | null> {
  try {
    return await poisonOf(scheduler, d, check);
  } catch (e) {
    check.log?.warn(
      { err: (e as Error).message, completionId: d.completionId },
      "could not check a replay's poison marks; running it",
    );
    return null;
  }
}

/** The fair dispatcher as the engine's WorkSource (one scheduler call per item; ioredis pipelines them). */
export function schedulerWorkSource(
  scheduler: Pick<
    FairScheduler,
    "next" | "chargeMany" | "cancelledAmong" | "noteReplay" | "noteEntering" | "noteStepped" | "waitForWork"
  >,
  workerId: string,
  poison?: PoisonCheck,
): WorkSource {
  return {
    async next(excludeTenants) {
      const d = await scheduler.next(workerId, { excludeTenants: [...excludeTenants] });
      if (!d) return null;
      if (!poison) return new DispatchedHandle(d);
      const { tenantId, completionId } = d.job;
      const attempt = d.attemptsStarted;
      const warn = (e: Error) => poison.log?.warn({ err: e.message, completionId }, "could not note a replay's step");
      const notes =
        attempt > 1
          ? {
              entering: () => scheduler.noteEntering(tenantId, completionId, attempt).catch(warn),
              stepped: () => void scheduler.noteStepped(tenantId, completionId, attempt).catch(warn),
            }
          : undefined;
      return new DispatchedHandle(d, await poisonOrRun(scheduler, d, poison), notes);
    },
    async charge(charges) {
      // charges are already cost-weighted tokens
      await scheduler.chargeMany(charges);
    },
    async cancelled(items) {
      // One MGET per tenant (its flags share its hash tag), not one call per completion.
      const byTenant = new Map<string, string[]>();
      for (const i of items) {
        const ids = byTenant.get(i.tenantId);
        if (ids) ids.push(i.completionId);
        else byTenant.set(i.tenantId, [i.completionId]);
      }
      const sets = await Promise.all([...byTenant].map(([tenantId, ids]) => scheduler.cancelledAmong(tenantId, ids)));
      return new Set(sets.flatMap((s) => [...s]));
    },
    waitForWork(ms) {
      // the poll interval, cut short when a tenant becomes ready (libs/scheduler ReadyWake)
      return scheduler.waitForWork(ms);
    },
  };
}
