import { systemClock, type Clock } from "@lite/core";

/**
 * Inter-token latency as a client sees it from one worker: the time between two appends of
 * the same completion's tokens to its stream (an append of k tokens counts k gaps of a k-th
 * of the time). The first append of a completion in this process counts no gap (its first
 * token is time-to-first-token's; a resumed one's was another worker's). Completions this process stopped hearing about (ended, or moved to another
 * worker) are forgotten after `forgetAfterMs`.
 */
export class InterTokenClock {
  private readonly last = new Map<string, number>();
  private readonly clock: Clock;
  private nextSweepMs = 0;

  constructor(
    private readonly onGap: (tenantId: string, ms: number, n: number) => void,
    opts: { clock?: Clock; forgetAfterMs?: number } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.forgetAfterMs = opts.forgetAfterMs ?? 120_000;
  }

  private readonly forgetAfterMs: number;

  /** `count` tokens of the completion reached its stream now. */
  appended(tenantId: string, completionId: string, count: number): void {
    if (count <= 0) return;
    const now = this.clock.nowMs();
    const before = this.last.get(completionId);
    this.last.set(completionId, now);
    if (before !== undefined) this.onGap(tenantId, (now - before) / count, count);
    if (now >= this.nextSweepMs) this.sweep(now);
  }

  /** The completion's stream ended here. */
  ended(completionId: string): void {
    this.last.delete(completionId);
  }

  private sweep(now: number): void {
    this.nextSweepMs = now + this.forgetAfterMs;
    for (const [id, at] of this.last) if (now - at > this.forgetAfterMs) this.last.delete(id);
  }
}
