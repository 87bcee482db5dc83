import { isTerminalStatus, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { Admission, FairScheduler } from "@lite/scheduler";
import type { TokenStreams } from "@lite/stream";
import type { CompletionLogger, CompletionRow } from "./completion.types";
import type { CreateIntent, CreateIntents } from "./create-intents";
import { completionJobOf } from "./create-completion";
import { endUnheld } from "./end-completion";

/**
 * The reconciler: repairs what a process that died inside createCompletion left behind,
 * from the write-ahead intents (create-intents.ts) older than `graceMs`. Per intent:
 *  - no row: the reservation (if any) is abandoned — nothing was accepted, the client got
 *    no answer and nothing is billed;
 *  - a QUEUED row whose job is missing: with an idempotency key (the client's retry will
 *    ask for this very completion) the job is queued from the row; without one (a retry
 *    makes a new completion) it is ended FAILED with nothing billed, its reservation
 *    settled — a completion nobody can see never runs and bills;
 *  - a QUEUED row whose job waits: its tenant is put (back) in the ready index, in case the
 *    process died between queueing the job and marking the tenant ready;
 *  - a final row: its reservation is settled again (idempotent) — the repair that ended it
 *    may have written the row and then failed to settle (Redis briefly away), and the
 *    row's status no longer says so;
 *  - a RUNNING row: nothing to do, the worker owns it.
 * Every repair is idempotent, so several reconcilers (one per worker) may run at once; the
 * intent is removed last, so a reconciler that dies mid-repair leaves it for the next.
 */
export interface ReconcileResources {
  db: PrismaClient;
  admission: Pick<Admission, "abandon" | "settle">;
  scheduler: Pick<FairScheduler, "enqueue" | "jobState" | "ensureReady">;
  streams: Pick<TokenStreams, "append" | "lastIndex" | "readAll">;
  intents: CreateIntents;
  clock: Clock;
  log: CompletionLogger;
}

export type Repair = "abandoned" | "requeued" | "failed" | "made-ready" | "settled" | "none";

export interface ReconcileReport {
  checked: number;
  repairs: Partial<Record<Repair, number>>;
  /** intents whose repair failed this pass (kept for the next; the others went on) */
  unrepaired: number;
}

/** One pass over the intents older than `graceMs` (at most `limit`). */
export async function reconcileOnce(
  r: ReconcileResources,
  opts: { graceMs: number; limit?: number },
): Promise<ReconcileReport> {
  const stale = await r.intents.olderThan(r.clock.nowMs() - opts.graceMs, opts.limit ?? 200);
  const report: ReconcileReport = { checked: stale.length, repairs: {}, unrepaired: 0 };
  for (const intent of stale) {
    let repair: Repair;
    try {
      repair = await repairIntent(r, intent);
    } catch (e) {
      // One intent that cannot be repaired now (Redis or PostgreSQL briefly away) must not
      // hold back the others: it stays, and the next pass tries it again.
      report.unrepaired++;
      r.log.warn({ ...intent, err: e }, "reconciler could not repair a create yet; retrying next pass");
      continue;
    }
    report.repairs[repair] = (report.repairs[repair] ?? 0) + 1;
    if (repair !== "none") r.log.warn({ ...intent, repair }, "reconciler repaired a create a crash interrupted");
  }
  return report;
}

async function repairIntent(r: ReconcileResources, intent: CreateIntent): Promise<Repair> {
  const { tenantId, completionId } = intent;
  const row = await r.db.completion.findUnique({ where: { id: completionId } });
  let repair: Repair = "none";
  if (!row || row.tenantId !== tenantId) {
    await r.admission.abandon(tenantId, completionId);
    repair = "abandoned";
  } else if (row.status === "QUEUED") {
    repair = await repairQueued(r, row);
  } else if (isTerminalStatus(row.status)) {
    await r.admission.settle(tenantId, completionId, row.outputTokens);
    repair = "settled";
  }
  await r.intents.end(tenantId, completionId);
  return repair;
}

async function repairQueued(r: ReconcileResources, row: CompletionRow): Promise<Repair> {
  const { tenantId, id: completionId } = row;
  const state = await r.scheduler.jobState(tenantId, completionId);
  const weight = async () =>
    (await r.db.tenant.findUnique({ where: { id: tenantId }, select: { weight: true } }))?.weight ?? 1;
  if (state !== "unknown") {
    if (state === "waiting" || state === "prioritized" || state === "delayed") {
      await r.scheduler.ensureReady(tenantId, await weight());
      return "made-ready";
    }
    return "none";
  }
  const keyed = await r.db.completionIdempotencyKey.findUnique({ where: { completionId } });
  if (!keyed) {
    await endUnheld(r, { tenantId, completionId }, "ERROR", "the API stopped while creating it", {
      background: false,
    });
    return "failed";
  }
  const model = await r.db.model.findUniqueOrThrow({ where: { id: row.modelId }, select: { name: true } });
  await r.scheduler.enqueue(completionJobOf(row, model.name, r.clock.nowMs()), await weight());
  return "requeued";
}

/** Runs reconcileOnce every `intervalMs` until stopped (errors logged, the next pass retries). */
export function startReconciler(
  r: ReconcileResources,
  opts: { intervalMs: number; graceMs: number },
): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const tick = () => {
    running = reconcileOnce(r, opts)
      .catch((e) => r.log.warn({ err: e }, "reconciler pass failed"))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, opts.intervalMs).unref();
      });
  };
  timer = setTimeout(tick, opts.intervalMs).unref();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
