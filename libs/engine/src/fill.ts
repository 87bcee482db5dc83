import type { EngineContext } from "./engine-context";
import { errText } from "./err-text";
import { heldByTenant, tenantsAtHoldCap } from "./hold-caps";
import { startJob } from "./job-start";
import { sleep } from "@lite/core";

/**
 * Step 1, continuously: fill free slots beside the decode steps, so a job that arrives
 * mid-step is started during that step (its round trips overlap the compute). Ends once
 * the engine is stopping.
 */
export async function fillLoop(ctx: EngineContext): Promise<void> {
  while (!ctx.stopping) {
    const before = ctx.running.size + ctx.starting;
    if (before < ctx.limit) {
      try {
        await fill(ctx);
      } catch (e) {
        ctx.deps.logger.warn({ err: errText(e) }, "fill failed, retrying");
        await sleep(200);
      }
    }
    const idle = ctx.running.size === 0 && ctx.starting === 0;
    await ctx.deps.work.waitForWork(idle ? ctx.opts.idlePollMs : ctx.opts.fillPollMs);
  }
}

/**
 * Takes jobs from the dispatcher until the held set is full or no tenant under its cap has
 * work, starting each as soon as it is taken: its round trips overlap the taking of the next
 * ones. (Until this was so, every job taken waited for the loop's last `next`, a round trip
 * per job taken after it plus one that found none: under a flood a light tenant's job waited
 * 17 ms at the median and 66 ms at p99 between leaving its queue and starting here.)
 */
export async function fill(ctx: EngineContext): Promise<void> {
  const limit = ctx.limit;
  if (ctx.running.size >= limit) return;
  const t0 = performance.now();
  const held = heldByTenant([...ctx.running.values()].map((r) => r.spec));
  const taken = new Map<string, number>();
  const starts: Promise<void>[] = [];
  let failure: { error: unknown } | undefined;
  try {
    // ctx.starting counts the jobs taken and not yet held (startJob's finally), so a job is
    // counted once: in `starting` until it is held, in `running` from then on.
    while (ctx.running.size + ctx.starting < limit) {
      const excluded = ctx.opts.fifo ? new Set<string>() : tenantsAtHoldCap(ctx.opts.batchSize, held, taken);
      const handle = await ctx.deps.work.next(excluded);
      if (!handle) break;
      const tenant = handle.tenantId;
      taken.set(tenant, (taken.get(tenant) ?? 0) + 1);
      countStarting(ctx, tenant, 1);
      starts.push(startJob(ctx, handle).finally(() => countStarting(ctx, tenant, -1)));
    }
  } catch (e) {
    failure = { error: e };
  }
  // Every job taken is started and awaited, also when taking the next one failed.
  const started = await Promise.allSettled(starts);
  ctx.stats.fillMs += performance.now() - t0;
  if (failure) throw failure.error;
  const refused = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (refused) throw refused.reason;
}

/** The tenant's jobs being started, by `by` (+1 as a job is taken, −1 once it is held or refused). */
function countStarting(ctx: EngineContext, tenantId: string, by: 1 | -1): void {
  const n = (ctx.startingByTenant.get(tenantId) ?? 0) + by;
  if (n > 0) ctx.startingByTenant.set(tenantId, n);
  else ctx.startingByTenant.delete(tenantId);
}
