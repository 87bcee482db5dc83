import { sleep } from "@lite/core";
import { duplicateSubscriber, type Redis } from "@lite/redis";

/**
 * The dispatch loop's wait for work: `wait(ms)` resolves after `ms`, or as soon as a tenant
 * becomes ready anywhere (sched-ready publishes its id on the ready channel), whichever comes
 * first. The timer stays the fallback: a job made ready without news (a stalled job moved
 * back, a message lost while the subscriber reconnects) is found at the next poll as before.
 * Why: under the isolation bench's flood a worker's 10 ms poll came round every 11 ms at the
 * median and 42 ms at p99 (timers late on a busy thread), and a light tenant's job waited
 * for it: 9 ms p50 / 39 ms p99 from its enqueue to the look that took it; 3 / 20 ms with
 * this wake (instrumented worker, one run each).
 *
 * A message that arrives while no wait is in progress (the loop is taking jobs) is kept: the
 * next wait ends at once. Until it was kept, a tenant made ready while the loop was between
 * waits was news to no one, and its job waited for the next poll. Under the isolation flood
 * a take is not short: `FairScheduler.next` took 6 ms at the median and 13 ms at p90 (one
 * instrumented run), several Redis round trips on a busy machine.
 *
 * One subscriber connection per scheduler, opened by the first wait.
 */
export class ReadyWake {
  private sub: Redis | undefined;
  /** one per wait in progress: aborting it ends that wait */
  private readonly waiting = new Set<AbortController>();
  private closed = false;
  /** a tenant became ready while no wait was in progress: the next wait ends at once */
  private missed = false;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
    private readonly onError?: (e: Error) => void,
  ) {}

  wait(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.subscribe();
    if (this.missed) {
      this.missed = false;
      return Promise.resolve();
    }
    const wake = new AbortController();
    this.waiting.add(wake);
    return sleep(ms, { signal: wake.signal }).finally(() => this.waiting.delete(wake));
  }

  /** Wakes every waiter and closes the subscriber. */
  close(): void {
    this.closed = true;
    this.wakeAll();
    this.sub?.disconnect();
    this.sub = undefined;
  }

  private subscribe(): void {
    if (this.sub) return;
    const sub = duplicateSubscriber(this.redis, "sched-ready-wake");
    this.sub = sub;
    sub.on("error", (e: Error) => this.onError?.(e));
    sub.on("message", () => this.wakeAll());
    sub.subscribe(this.channel).catch((e: Error) => this.onError?.(e));
  }

  private wakeAll(): void {
    if (this.waiting.size === 0 && !this.closed) this.missed = true;
    for (const wake of this.waiting) wake.abort();
  }
}
