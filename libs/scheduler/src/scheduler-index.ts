/**
 * The scheduler index under `{sched}`: which tenants have waiting jobs, ordered by weighted
 * virtual time (start-time fair queueing), and which tenants may hold active jobs.
 *
 * Virtual time (vtime) of a tenant = service charged to it ÷ its weight, in cost-weighted
 * tokens. The global virtual clock is the vtime at which the latest dispatch started.
 *  1. markReady (after a job reached a tenant's wait list): store the weight, bump the ready
 *     epoch; a tenant not yet ready enters at max(own vtime, clock, smallest ready vtime),
 *     so idle time earns no credit, and is published on the ready channel (ReadyWake).
 *  2. pick: the smallest vtime among ready tenants (minus skipped ones), O(log N);
 *     clock = max(clock, that vtime); vtime += dispatchCharge / weight; register the tenant
 *     in the active index (for the stalled-job sweep).
 *  3. unready (after a fetch from the tenant's queue found nothing): compare-and-delete on
 *     the ready epoch read in step 2, so a concurrent markReady is never lost.
 *  4. charge: vtime += tokens × costWeight / weight (the ready score follows).
 * Nothing here iterates over tenants: every call costs O(log N) in the number of tenants.
 */
import path from "node:path";
import type { Redis } from "ioredis";
import type { RedisKeys } from "@lite/redis";
import type { Clock } from "@lite/core";
import { loadLuaCommands, num, type LuaCommand } from "./lua-scripts";

type Name =
  | "sched-ready"
  | "sched-pick"
  | "sched-unready"
  | "sched-charge"
  | "sched-charge-many"
  | "sched-active-list"
  | "sched-active-prune";

export interface Pick {
  tenantId: string;
  /** ready epoch observed by the pick (for unready) */
  epoch: string;
  /** the tenant's vtime when picked */
  vtime: number;
}

export interface ActiveEntry {
  tenantId: string;
  registeredAtMs: number;
  registration: string;
}

export class SchedulerIndex {
  private readonly lua: Record<Name, LuaCommand>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly clock?: Clock,
  ) {
    this.lua = loadLuaCommands<Name>(redis, path.join(__dirname, "lua"), "liteSched");
  }

  private now(): string {
    return this.clock ? String(Math.floor(this.clock.nowMs())) : "";
  }

  async markReady(tenantId: string, weight?: number): Promise<number> {
    const k = this.keys;
    const v = await this.lua["sched-ready"](
      [k.schedReady(), k.schedVtime(), k.schedWeight(), k.schedReadySeq(), k.schedVirtualClock()],
      [tenantId, weight === undefined ? "" : String(weight), k.schedReadyChannel()],
    );
    return num(v);
  }

  /** Stores a tenant's weight (latest wins, as markReady's); later charges divide by it. */
  async setWeight(tenantId: string, weight: number): Promise<void> {
    await this.redis.hset(this.keys.schedWeight(), tenantId, String(weight));
  }

  /** Stored weight of a tenant (null when never stored). */
  async weight(tenantId: string): Promise<number | null> {
    const w = await this.redis.hget(this.keys.schedWeight(), tenantId);
    return w === null ? null : Number(w);
  }

  async pick(dispatchChargeTokens: number, skip: readonly string[] = []): Promise<Pick | null> {
    const k = this.keys;
    const r = (await this.lua["sched-pick"](
      [
        k.schedReady(),
        k.schedVtime(),
        k.schedWeight(),
        k.schedReadySeq(),
        k.schedVirtualClock(),
        k.schedActive(),
        k.schedActiveSeq(),
        k.schedActiveCounter(),
      ],
      [this.now(), dispatchChargeTokens, ...skip],
    )) as [string, string, string] | null;
    if (!r) return null;
    return { tenantId: r[0], epoch: String(r[1]), vtime: Number(r[2]) };
  }

  async unready(tenantId: string, epoch: string): Promise<boolean> {
    const r = await this.lua["sched-unready"]([this.keys.schedReady(), this.keys.schedReadySeq()], [tenantId, epoch]);
    return num(r) === 1;
  }

  async charge(tenantId: string, costWeightedTokens: number): Promise<number> {
    const k = this.keys;
    return num(
      await this.lua["sched-charge"]([k.schedReady(), k.schedVtime(), k.schedWeight()], [tenantId, costWeightedTokens]),
    );
  }
  /** charge() for several tenants in one call (cost-weighted tokens per tenant). */
  async chargeMany(charges: ReadonlyMap<string, number>): Promise<void> {
    if (charges.size === 0) return;
    const k = this.keys;
    await this.lua["sched-charge-many"](
      [k.schedReady(), k.schedVtime(), k.schedWeight()],
      [...charges].flatMap(([tenantId, tokens]) => [tenantId, tokens]),
    );
  }

  /** All tenants in the active index (paged internally), with the redis time of the listing. */
  async listActive(pageSize = 1000): Promise<{ nowMs: number; entries: ActiveEntry[] }> {
    const k = this.keys;
    const entries: ActiveEntry[] = [];
    let nowMs = 0;
    for (let offset = 0; ; offset += pageSize) {
      const r = (await this.lua["sched-active-list"](
        [k.schedActive(), k.schedActiveSeq()],
        [this.now(), offset, pageSize],
      )) as Array<string | number>;
      if (offset === 0) nowMs = num(r[0]);
      for (let i = 1; i + 2 < r.length + 1; i += 3) {
        entries.push({ tenantId: String(r[i]), registeredAtMs: num(r[i + 1]), registration: String(r[i + 2]) });
      }
      if ((r.length - 1) / 3 < pageSize) break;
    }
    return { nowMs, entries };
  }

  async pruneActive(tenantId: string, registration: string): Promise<boolean> {
    const r = await this.lua["sched-active-prune"](
      [this.keys.schedActive(), this.keys.schedActiveSeq()],
      [tenantId, registration],
    );
    return num(r) === 1;
  }

  /**
   * Tenants whose queues exist, for operators' views (bull-board), at most `limit`: those with
   * waiting work first (ready index, smallest vtime first), then those that may hold active
   * jobs, then every other tenant that ever enqueued (its weight is stored at each enqueue).
   * HSCAN pages the last group, so a large index costs `limit` entries, not all of them.
   */
  async knownTenants(limit: number): Promise<string[]> {
    const k = this.keys;
    const seen = new Set<string>();
    const add = (ids: string[]) => {
      for (const id of ids) if (seen.size < limit) seen.add(id);
    };
    if (limit <= 0) return [];
    add(await this.redis.zrange(k.schedReady(), 0, limit - 1));
    if (seen.size < limit) add(await this.redis.zrange(k.schedActive(), 0, limit - 1));
    let cursor = "0";
    while (seen.size < limit) {
      const [next, flat] = await this.redis.hscan(k.schedWeight(), cursor, "COUNT", Math.min(1000, limit));
      add(flat.filter((_, i) => i % 2 === 0));
      cursor = next;
      if (cursor === "0") break;
    }
    return [...seen];
  }

  /** Number of tenants marked ready (observability, tests). */
  readyCount(): Promise<number> {
    return this.redis.zcard(this.keys.schedReady());
  }

  /** Stored vtime of a tenant (0 when never seen). */
  async vtime(tenantId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.schedVtime(), tenantId)) ?? 0);
  }
}
