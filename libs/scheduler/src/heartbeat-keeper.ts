/**
 * A FairScheduler's side of worker heartbeats (worker-heartbeats.ts holds the rules and the
 * scripts): the heartbeat id each worker id dispatches under, the beats (the background loop's
 * and any other, one at a time), the takeover of dead peers' jobs, and the give-up of this
 * process' jobs when a peer claimed one of its ids.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DispatchedJobImpl } from "./dispatched-job";
import type { StalledSweeper, SweepResult } from "./stalled-sweeper";
import { BEATS_PER_TTL, type WorkerHeartbeats } from "./worker-heartbeats";

export class HeartbeatKeeper {
  /** worker id → its heartbeat id, `<worker id>/<incarnation>` */
  private readonly incarnations = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  /** the last beat begun: the next waits for it (beats never overlap) */
  private run: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly heartbeats: WorkerHeartbeats,
    /** the scheduler's jobs held by this process (a give-up removes from it) */
    private readonly held: Set<DispatchedJobImpl>,
    private readonly sweeper: StalledSweeper,
    private readonly log?: Logger,
  ) {}

  /**
   * What a lock token of this worker id starts with: its current heartbeat id, whose first
   * beat lands before its first job (so its jobs are always findable by peers).
   */
  async holderId(workerId: string): Promise<string> {
    let id = this.incarnations.get(workerId);
    if (!id) {
      id = this.incarnate(workerId);
      await this.beat();
    }
    return this.incarnations.get(workerId) ?? id;
  }

  /** A fresh heartbeat id for the worker id (at its first dispatch, and after a claim). */
  private incarnate(workerId: string): string {
    const id = `${workerId}/${randomUUID().slice(0, 8)}`;
    this.incarnations.set(workerId, id);
    this.heartbeats.register(id);
    return id;
  }

  /**
   * One heartbeat now, then the takeover of dead peers' jobs. Returns the jobs taken over, or
   * null when Redis did not answer. Calls run one after another: once one returns, every
   * give-up and takeover begun before it is complete.
   */
  beat(): Promise<SweepResult | null> {
    const run = this.run.then(() => this.beatOnce());
    this.run = run.catch(() => undefined);
    return run;
  }

  private async beatOnce(): Promise<SweepResult | null> {
    const hb = this.heartbeats;
    let claimed: string[];
    try {
      claimed = await hb.beat();
    } catch (e) {
      hb.missed();
      this.log?.warn({ err: e }, "heartbeat failed");
      return null;
    }
    if (claimed.length > 0) {
      // Never back under a claimed id: a new incarnation beats (now) and holds new jobs.
      for (const [workerId, id] of this.incarnations) {
        if (!claimed.includes(id)) continue;
        hb.unregister(id);
        this.incarnate(workerId);
      }
      await hb.beat().catch(() => hb.missed());
      await this.giveUp(claimed);
    }
    try {
      // Claimed first (compare-and-delete), released after: a worker that beat meanwhile is
      // not claimed and keeps its jobs. A release that fails leaves them to their locks' lapse.
      const mine = await hb.claim(await hb.deadPeers());
      if (mine.length === 0) return { checked: 0, requeued: [], pruned: 0 };
      this.log?.warn({ workers: mine }, "workers' heartbeats expired: taking their jobs over");
      return await this.sweeper.releaseHeld(mine);
    } catch (e) {
      this.log?.warn({ err: e }, "taking over a dead worker's jobs failed");
      return null;
    }
  }

  /**
   * Peers claimed these worker ids of this process (their heartbeat had expired): they are
   * taking their jobs over (worker-heartbeats.ts rule 3). Every job they hold is marked
   * lock-lost (the engine drops it before its next step) and its lock released, so it is
   * replayed at once, here or elsewhere.
   */
  private async giveUp(workerIds: string[]): Promise<void> {
    const mine = [...this.held].filter((d) => workerIds.some((id) => d.token.startsWith(`${id}:`)));
    this.log?.error(
      { workers: workerIds, jobs: mine.length },
      "this worker's heartbeat lapsed (stalled or cut off from Redis): giving up the jobs it holds",
    );
    for (const d of mine) {
      d.markLost();
      this.held.delete(d);
    }
    if (mine.length === 0) return;
    await this.sweeper
      .releaseHeld(
        mine.map((d) => d.token),
        [...new Set(mine.map((d) => d.tenantId))],
      )
      .catch((e) => this.log?.warn({ err: e }, "could not release the given-up jobs' locks (they lapse)"));
  }

  /** The background loop: a beat every TTL / BEATS_PER_TTL until `stop` (once; later calls do nothing). */
  start(): void {
    if (this.timer || this.stopped) return;
    const period = Math.max(10, Math.floor(this.heartbeats.ttlMs / BEATS_PER_TTL));
    const tick = () => {
      void this.beat()
        .catch((e) => this.log?.warn({ err: e }, "heartbeat failed"))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, period);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(tick, period);
    this.timer.unref();
  }

  /** Stops the loop and waits for the beat in progress (and any queued behind it). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.run;
  }
}
