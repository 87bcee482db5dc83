import type { DispatchedJob, FairScheduler } from "@lite/scheduler";
import type { WorkHandle, WorkSource } from "../ports";

/** A libs/scheduler DispatchedJob as the engine's WorkHandle. */
class DispatchedHandle implements WorkHandle {
  constructor(
    private readonly d: DispatchedJob,
    /** set when this start is judged a poison job's (it crashed workers without progress) */
    private readonly poison: string | null = null,
  ) {}
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
  /** starts in a row without progress that make a job poison (WORKER_POISON_STARTS) */
  startsWithoutProgress: number;
}

/**
 * A replayed job (its worker died or its lock lapsed) is poison when it has now been started
 * `startsWithoutProgress` times in a row without a token streamed in between: it crashes
 * every worker it reaches. A worker killed for any other reason leaves its jobs with
 * progress since their previous start, and they run on; how many times does not matter.
 */
async function poisonOf(
  scheduler: Pick<FairScheduler, "noteReplay">,
  d: DispatchedJob,
  check: PoisonCheck,
): Promise<string | null> {
  if (d.attemptsStarted <= 1 || d.deferredFailure) return null;
  const { tenantId, completionId } = d.job;
  const strikes = await scheduler.noteReplay(tenantId, completionId, await check.progressOf(tenantId, completionId));
  return strikes >= check.startsWithoutProgress
    ? `poison: started ${strikes + 1} times in a row, each time its worker died or stalled before a token was streamed`
    : null;
}

/** The fair dispatcher as the engine's WorkSource (one scheduler call per item; ioredis pipelines them). */
export function schedulerWorkSource(
  scheduler: Pick<FairScheduler, "next" | "charge" | "isCancelled" | "noteReplay">,
  workerId: string,
  poison?: PoisonCheck,
): WorkSource {
  return {
    async next(excludeTenants) {
      const d = await scheduler.next(workerId, { excludeTenants: [...excludeTenants] });
      if (!d) return null;
      return new DispatchedHandle(d, poison ? await poisonOf(scheduler, d, poison) : null);
    },
    async charge(charges) {
      // charges are already cost-weighted tokens
      await Promise.all([...charges].map(([tenantId, cost]) => scheduler.charge(tenantId, cost, 1)));
    },
    async cancelled(items) {
      const flags = await Promise.all(items.map((i) => scheduler.isCancelled(i.tenantId, i.completionId)));
      return new Set(items.filter((_, k) => flags[k]).map((i) => i.completionId));
    },
    async waitForWork(ms) {
      await new Promise((r) => setTimeout(r, ms));
    },
  };
}
