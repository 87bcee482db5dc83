import type { PrismaClient } from "@lite/db";
import type { Admission, DispatchedJob, FairScheduler } from "@lite/scheduler";
import { recordCompletionUsage } from "@lite/telemetry";
import type { AdmissionPort, UsagePort, WorkHandle, WorkSource } from "./engine/ports";

/**
 * Adapters from libs/scheduler, libs/stream and PostgreSQL to the engine's ports. Each
 * batches what the engine hands it into as few round trips as the library allows.
 */

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

export function schedulerWorkSource(scheduler: FairScheduler, workerId: string): WorkSource {
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

/**
 * Admission.progress counts a running total; calling it every token would cost two Lua
 * calls per token, so it is sent every `everyTokens` tokens (default 16; outstanding tokens lag by at
 * most that many; settle releases the rest exactly).
 */
export function admissionPort(admission: Admission, everyTokens = 16): AdmissionPort {
  return {
    async progress(items) {
      await Promise.all(
        items
          .filter((i) => i.generatedTokens % everyTokens === 0)
          .map((i) => admission.progress(i.tenantId, i.completionId, i.generatedTokens)),
      );
    },
    settle: (tenantId, completionId, generatedTokens) => admission.settle(tenantId, completionId, generatedTokens),
  };
}

export function usagePort(db: PrismaClient): UsagePort {
  return {
    async record(u) {
      await recordCompletionUsage(db, u);
    },
  };
}
