/**
 * Worker heartbeats: how a surviving worker learns within about one heartbeat TTL that a peer
 * died, instead of waiting for each of its jobs' locks to lapse (lockDurationMs) and a
 * stalled check after that.
 *
 * One sorted set in `{sched}` (RedisKeys.schedWorkers): worker id → the ms (Redis time) its
 * heartbeat expires at. Every worker id this process dispatches for beats every ttl / 4
 * (hb-beat: expiry = now + ttl). The lock token of every job it holds starts with that id
 * (`<worker id>:<uuid>`, FairScheduler.next), so a dead worker's jobs are known by their locks.
 *
 * The rules that keep a job from running on two workers at once:
 *  1. A worker is dead once its expiry has passed (hb-dead). Only an observer whose OWN
 *     heartbeat has been continuous for at least one TTL may act on that: after a Redis
 *     outage every worker's heartbeat has lapsed, and the live ones beat again within
 *     ttl / 4 of its end, before any observer is allowed to judge them.
 *  2. Taking over (StalledSweeper.releaseDead): on each tenant queue that may hold active
 *     jobs, the locks naming a dead worker are deleted and those jobs handed to BullMQ's
 *     stalled check at once (release-locks); then the dead ids are forgotten, compare-and-
 *     delete on the expiry read (hb-forget: one that beat meanwhile stays).
 *  3. Self-fencing: a beat that finds its own heartbeat lapsed (expiry below now), or gone
 *     (a peer forgot it after a takeover), means peers may be taking this worker's jobs. It
 *     gives every job it holds up at once (`onLapse`: marked lock-lost, so the engine drops
 *     it before its next step, and its lock released for a prompt replay elsewhere) rather
 *     than race the takeover.
 * Whatever the timing, a job's lock token still decides who may complete it (BullMQ checks
 * it), and the token stream stores each index once (libs/stream): a worker that stalled past
 * its TTL and wakes up mid-step can at worst re-append tokens already stored, which are
 * identical by determinism and ignored.
 */
import path from "node:path";
import type { Redis } from "ioredis";
import type { Clock } from "@lite/core";
import type { RedisKeys } from "@lite/redis";
import { loadLuaCommands, num, type LuaCommand } from "./lua-scripts";

type Name = "hb-beat" | "hb-dead" | "hb-forget";

export interface DeadWorker {
  workerId: string;
  /** the expiry that was read (hb-forget compares it) */
  expiredAtMs: number;
}

export class WorkerHeartbeats {
  private readonly lua: Record<Name, LuaCommand>;
  /** ids this process beats for, and whether each has beaten before */
  private readonly ids = new Map<string, boolean>();
  /** Redis time since which every beat of this process was on time (null: not yet, or just lapsed) */
  private continuousSinceMs: number | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly ttlMs: number,
    private readonly clock?: Clock,
  ) {
    if (!(ttlMs > 0)) throw new Error(`heartbeat TTL must be positive, got ${ttlMs}`);
    this.lua = loadLuaCommands<Name>(redis, path.join(__dirname, "lua"), "liteSched");
  }

  private now(): string {
    return this.clock ? String(Math.floor(this.clock.nowMs())) : "";
  }

  /** A worker id this process dispatches for: it beats from the next beat on. True when it is new. */
  register(workerId: string): boolean {
    if (this.ids.has(workerId)) return false;
    this.ids.set(workerId, false);
    return true;
  }

  get registered(): number {
    return this.ids.size;
  }

  /**
   * One beat for every registered id. Returns the ids whose heartbeat had lapsed (expired, or
   * forgotten by a peer that took their jobs over): their jobs must be given up.
   */
  async beat(): Promise<string[]> {
    const ids = [...this.ids.keys()];
    if (ids.length === 0) return [];
    const r = (await this.lua["hb-beat"]([this.keys.schedWorkers()], [this.ttlMs, this.now(), ...ids])) as number[];
    const nowMs = num(r[0]);
    const lapsed: string[] = [];
    ids.forEach((id, i) => {
      const prev = num(r[i + 1]);
      const beatBefore = this.ids.get(id)!;
      if ((prev >= 0 && prev < nowMs) || (prev < 0 && beatBefore)) lapsed.push(id);
      this.ids.set(id, true);
    });
    if (lapsed.length > 0 || this.continuousSinceMs === null) this.continuousSinceMs = nowMs;
    return lapsed;
  }

  /** The next beat failed (Redis away): continuity is not known any more. */
  missed(): void {
    this.continuousSinceMs = null;
  }

  /**
   * Peers whose heartbeat expired, at most `limit`; [] unless this process' own heartbeat has
   * been continuous for a whole TTL (rule 1).
   */
  async deadPeers(limit = 100): Promise<DeadWorker[]> {
    if (this.continuousSinceMs === null) return [];
    const r = (await this.lua["hb-dead"]([this.keys.schedWorkers()], [this.now(), limit])) as Array<string | number>;
    const nowMs = num(r[0]);
    if (nowMs - this.continuousSinceMs < this.ttlMs) return [];
    const out: DeadWorker[] = [];
    for (let i = 1; i + 1 < r.length; i += 2) {
      const workerId = String(r[i]);
      if (!this.ids.has(workerId)) out.push({ workerId, expiredAtMs: num(r[i + 1]) });
    }
    return out;
  }

  /** Forgets dead workers whose jobs were taken over (compare-and-delete on their expiry). */
  async forget(dead: readonly DeadWorker[]): Promise<number> {
    if (dead.length === 0) return 0;
    return num(
      await this.lua["hb-forget"](
        [this.keys.schedWorkers()],
        dead.flatMap((d) => [d.workerId, d.expiredAtMs]),
      ),
    );
  }
}
