/**
 * Worker heartbeats: how a surviving worker learns within about one heartbeat TTL that a peer
 * died, instead of waiting for each of its jobs' locks to lapse (lockDurationMs) and a
 * stalled check after that.
 *
 * One sorted set in `{sched}` (RedisKeys.schedWorkers): heartbeat id → the ms (Redis time)
 * its heartbeat expires at. A heartbeat id is `<worker id>/<incarnation>` (heartbeat-keeper.ts: a
 * fresh incarnation per process and after every claim, so an id once claimed never comes
 * back). Every id this process dispatches for beats every ttl / BEATS_PER_TTL (hb-beat: expiry = now +
 * ttl). The lock token of every job it holds starts with that id (`<heartbeat id>:<uuid>`,
 * FairScheduler.next), so a dead worker's jobs are known by their locks.
 *
 * The rules that keep a job from running on two workers at once:
 *  1. A worker is dead once its expiry has passed (hb-dead). Only an observer whose OWN
 *     heartbeat has been continuous for at least one TTL may act on that: after a Redis
 *     outage every worker's heartbeat has lapsed, and the live ones beat again within
 *     ttl / BEATS_PER_TTL of its end, before any observer is allowed to judge them.
 *  2. Claim, then take over: the observer first claims the dead ids, compare-and-delete on
 *     the expiry it read (hb-forget: one that beat meanwhile is not claimed, and a beat
 *     renews an expired id atomically, so a worker is claimed or beats on, never both).
 *     Only then, on each tenant queue that may hold active jobs, the locks naming a claimed
 *     worker are deleted and those jobs handed to BullMQ's stalled check at once
 *     (StalledSweeper.releaseHeld, release-locks.lua).
 *  3. Self-fencing: a beat that finds its own id gone (claimed: peers are taking its jobs)
 *     gives up every job this process holds for it at once (heartbeat-keeper.ts: marked
 *     lock-lost, so the engine drops it before its next step, and its lock released for a
 *     prompt replay elsewhere). A beat that finds its own heartbeat expired but unclaimed
 *     (its event loop was blocked past the TTL) keeps its jobs: no peer can claim it now.
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

/**
 * Beats (and looks for dead peers) this many times per TTL. A death is seen between TTL − TTL/n
 * and TTL + TTL/n after it (the last beat, then the next look), so more beats mean less jitter
 * in takeover time (at 4 it spanned 0.75–1.25 s by default), and a live worker is misjudged
 * dead only when its event loop is blocked for TTL − TTL/n. Two small scripts per beat per
 * process: 20 a second at the 1 s default.
 */
export const BEATS_PER_TTL = 10;

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

  /** A heartbeat id this process dispatches for: it beats from the next beat on. */
  register(id: string): void {
    if (!this.ids.has(id)) this.ids.set(id, false);
  }

  /** An id that was claimed: it never beats again. */
  unregister(id: string): void {
    this.ids.delete(id);
  }

  get registered(): number {
    return this.ids.size;
  }

  /**
   * One beat for every registered id. Returns the ids a peer claimed since the last beat
   * (absent from the set after beating before): their jobs must be given up.
   */
  async beat(): Promise<string[]> {
    const ids = [...this.ids.keys()];
    if (ids.length === 0) return [];
    const r = (await this.lua["hb-beat"](
      [this.keys.schedWorkers()],
      [this.ttlMs, this.now(), ...ids.flatMap((id) => [id, this.ids.get(id) ? 1 : 0])],
    )) as number[];
    const nowMs = num(r[0]);
    const claimed: string[] = [];
    let lapsed = false;
    ids.forEach((id, i) => {
      const prev = num(r[i + 1]);
      const beatBefore = this.ids.get(id)!;
      if (prev < 0 && beatBefore) claimed.push(id);
      else this.ids.set(id, true);
      if (prev >= 0 && prev < nowMs) lapsed = true;
    });
    // expired or claimed: not continuous; it judges no peer for a whole TTL from now
    if (lapsed || claimed.length > 0 || this.continuousSinceMs === null) this.continuousSinceMs = nowMs;
    return claimed;
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

  /** Claims dead workers before their jobs are taken over (compare-and-delete on their expiry); the ids claimed. */
  async claim(dead: readonly DeadWorker[]): Promise<string[]> {
    if (dead.length === 0) return [];
    const r = (await this.lua["hb-forget"](
      [this.keys.schedWorkers()],
      dead.flatMap((d) => [d.workerId, d.expiredAtMs]),
    )) as string[];
    return r.map(String);
  }
}
