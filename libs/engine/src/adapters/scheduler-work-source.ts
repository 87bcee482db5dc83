import type { DispatchedJob, FairScheduler } from "@lite/scheduler";
import type { WorkHandle, WorkSource } from "../ports";

/** A libs/scheduler DispatchedJob as the engine's WorkHandle. */
class DispatchedHandle implements WorkHandle {
  constructor(private readonly d: DispatchedJob) {}
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
    return this.d.deferredFailure;
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

/** The fair dispatcher as the engine's WorkSource (one scheduler call per item; ioredis pipelines them). */
export function schedulerWorkSource(
  scheduler: Pick<FairScheduler, "next" | "charge" | "isCancelled">,
  workerId: string,
): WorkSource {
  return {
    async next(excludeTenants) {
      const d = await scheduler.next(workerId, { excludeTenants: [...excludeTenants] });
      return d ? new DispatchedHandle(d) : null;
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
