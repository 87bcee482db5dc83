import type { EngineContext } from "./engine-context";
import { errText } from "./err-text";
import { heldByTenant, tenantsAtHoldCap } from "./hold-caps";
import { startJob } from "./job-start";
import type { WorkHandle } from "./ports";
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

/** Takes jobs from the dispatcher until the held set is full or no tenant under its cap has work, and starts them. */
export async function fill(ctx: EngineContext): Promise<void> {
  const limit = ctx.limit;
  if (ctx.running.size >= limit) return;
  const t0 = performance.now();
  const held = heldByTenant([...ctx.running.values()].map((r) => r.spec));
  const handles: WorkHandle[] = [];
  const taken = new Map<string, number>();
  while (ctx.running.size + handles.length < limit) {
    const excluded = ctx.opts.fifo ? new Set<string>() : tenantsAtHoldCap(ctx.opts.batchSize, held, taken);
    const handle = await ctx.deps.work.next(excluded);
    if (!handle) break;
    handles.push(handle);
    taken.set(handle.tenantId, (taken.get(handle.tenantId) ?? 0) + 1);
  }
  // Start them together: each start is a few round trips to PostgreSQL and Redis.
  ctx.starting += handles.length;
  try {
    await Promise.all(handles.map((h) => startJob(ctx, h).finally(() => ctx.starting--)));
  } finally {
    ctx.stats.fillMs += performance.now() - t0;
  }
}
