/**
 * The stalled-job sweep over every tenant queue that may hold active jobs.
 *
 * BullMQ recovers a dead worker's job only when someone runs `moveStalledJobsToWait` on
 * that job's queue. With one queue per tenant and a bounded set of Worker objects, that
 * someone is this sweep, driven by the `{sched}` active index rather than by the Workers
 * held in memory. Every `intervalMs`:
 *  1. list the active index (tenants registered by a dispatch);
 *  2. for each, run BullMQ's stalled check on its queue (the script throttles itself per
 *     queue with `stalled-check`, so many processes sweeping costs little). A job whose lock
 *     expired comes back to the wait list; mark that tenant ready so it is dispatched again;
 *  3. a tenant registered more than `graceMs` ago whose active list is empty is dropped from
 *     the index by compare-and-delete on its registration counter (a dispatch since the
 *     listing keeps it). The grace covers a dispatcher between its registration and its
 *     move to active: only a dispatcher paused longer than the grace and then killed before
 *     re-registering could leave an active job unswept.
 */
import path from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { loadLuaCommands, type LuaCommand } from "./lua-scripts";
import type { SchedulerIndex } from "./scheduler-index";
import type { TenantQueues } from "./tenant-queues";

export interface StalledSweeperOptions {
  /** client for release-locks (any; its keys are in each tenant's slot) */
  redis: Redis;
  index: SchedulerIndex;
  queues: TenantQueues;
  /** sweep period, ms */
  intervalMs: number;
  /** minimum age of a registration before the tenant may leave the active index, ms */
  graceMs: number;
  /** tenant queues checked in parallel */
  parallelism?: number;
  log?: Logger;
}

export interface SweepResult {
  checked: number;
  /** job ids returned to a wait list (or deferred-failed) per tenant */
  requeued: Array<{ tenantId: string; jobIds: string[] }>;
  pruned: number;
}

export class StalledSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;
  private readonly lua: Record<"release-locks", LuaCommand>;

  constructor(private readonly opts: StalledSweeperOptions) {
    this.lua = loadLuaCommands<"release-locks">(opts.redis, path.join(__dirname, "lua"), "liteSched");
  }

  start(): void {
    if (this.timer || this.stopped) return;
    const tick = () => {
      this.running = this.sweepOnce()
        .catch((e) => this.opts.log?.warn({ err: e }, "stalled-job sweep failed"))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(tick, this.opts.intervalMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  async sweepOnce(): Promise<SweepResult> {
    const { index, queues, graceMs } = this.opts;
    const { nowMs, entries } = await index.listActive();
    const result: SweepResult = { checked: entries.length, requeued: [], pruned: 0 };
    const parallelism = this.opts.parallelism ?? 16;
    let next = 0;
    const lane = async () => {
      while (next < entries.length) {
        const e = entries[next++];
        const handle = queues.get(e.tenantId);
        const jobIds = (await handle.backend.moveStalledJobsToWait()) as string[];
        if (jobIds.length > 0) {
          result.requeued.push({ tenantId: e.tenantId, jobIds });
          await index.markReady(e.tenantId);
          this.opts.log?.warn({ tenantId: e.tenantId, jobIds }, "stalled jobs returned to the wait list");
        }
        if (nowMs - e.registeredAtMs >= graceMs) {
          const client = await handle.backend.client;
          const activeLen = await client.llen(handle.backend.keys.active);
          if (activeLen === 0 && (await index.pruneActive(e.tenantId, e.registration))) result.pruned++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, entries.length) }, lane));
    return result;
  }

  /**
   * Takes over the active jobs whose lock names one of `owners` (dead worker ids, or exact
   * lock tokens), on the given tenants' queues or on every tenant of the active index: per
   * queue, release-locks.lua deletes those locks and marks the jobs stalled, and BullMQ's
   * stalled check moves them back to wait at once (the tenant is marked ready). Jobs held
   * by anyone else are left alone (worker-heartbeats.ts).
   */
  async releaseHeld(owners: readonly string[], tenantIds?: readonly string[]): Promise<SweepResult> {
    const ids = tenantIds ?? (await this.opts.index.listActive()).entries.map((e) => e.tenantId);
    const result: SweepResult = { checked: ids.length, requeued: [], pruned: 0 };
    if (owners.length === 0) return result;
    const parallelism = this.opts.parallelism ?? 16;
    let next = 0;
    const lane = async () => {
      while (next < ids.length) {
        const tenantId = ids[next++];
        const handle = this.opts.queues.get(tenantId);
        const k = handle.backend.keys;
        const released = (await this.lua["release-locks"](
          [k.active, k.stalled, k["stalled-check"]],
          [k[""], ...owners],
        )) as string[];
        if (released.length === 0) continue;
        const jobIds = (await handle.backend.moveStalledJobsToWait()) as string[];
        result.requeued.push({ tenantId, jobIds });
        await this.opts.index.markReady(tenantId);
        this.opts.log?.warn({ tenantId, jobIds, owners }, "jobs of a dead worker returned to the wait list");
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, ids.length) }, lane));
    return result;
  }
}
