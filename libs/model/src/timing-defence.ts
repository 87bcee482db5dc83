import type { Clock } from "@lite/core";

/**
 * The timing defence (TIMING_DEFENCE, on by default): a tenant must not learn from its own
 * token times whether another tenant made an expert resident.
 *
 * 1. Every expert load a decode step starts is timed from its start to its end
 *    (expert-loads.ts). Per tier, the estimate of "a load from this tier" is the slowest of
 *    its last `window` loads (default 32), rounded up to the next power of two ms and never
 *    below `floorMs` (default 8 ms: the estimate before any load of the tier was measured).
 *    Loads only: an earlier version also took each cold path (a parked token's first
 *    attempt to its computation, which includes waiting for the next step), and on a busy
 *    worker those reached hundreds of ms, so every first use was padded that long and a
 *    light tenant got a sixth of its weighted share over the first seconds (the e2e
 *    fairness test: 1:6.3 for weights 1:3).
 *    Taking the slowest and rounding up keeps the pad at or above what a load costs, so a
 *    padded token and a cold one take about the same time; the power-of-two buckets keep the
 *    estimate from moving with every load, which another tenant's loads would otherwise
 *    reveal through it.
 * 2. A sequence whose step used an expert its tenant had not used since it became resident
 *    (the lease's `firstUseBy`) is parked as if that expert were cold, for its tier's
 *    estimate (`asIfLoading`; expert-parking.ts), and retries like a parked sequence. A cold
 *    token parks once per layer that needs a load, each park costing the load and a wait
 *    for the next step: a padded one now has the same shape, layer by layer. (One pad for
 *    the whole token, the earlier rule, let the sidechannel benchmark tell a first use of
 *    a hot expert from a cold one with AUC 1.0 on the `default` model: 4 layers of loads
 *    against one estimate.)
 *    Then, as before, a token that owes pads (first uses or parks) is emitted no sooner
 *    than the moment its computation was first attempted plus the largest owed estimate.
 * 3. The token is computed in that step as usual and held by the batch (decode-batch.ts):
 *    the sequence waits, the batch does not, and the token is never recomputed.
 * 4. First uses that were padded are counted per tenant (`paddedFirstUses`), from the
 *    leases alone: the count is the same whether the expert was hot or cold, so it says
 *    nothing about other tenants.
 *
 * Off, nothing is padded or counted; loads are still timed.
 */

/** The default floor of a tier's load-time estimate, ms. */
export const LOAD_ESTIMATE_FLOOR_MS = 8;
/** The default number of recent loads per tier the estimate looks at. */
export const LOAD_ESTIMATE_WINDOW = 32;

export interface TimingDefenceOptions {
  enabled: boolean;
  /** the clock of holds, ms (attempt starts and emission times); default Date.now */
  clock?: Clock;
  /** an estimate is never below this, ms (default LOAD_ESTIMATE_FLOOR_MS) */
  floorMs?: number;
  /** recent loads per tier the estimate is the slowest of (default LOAD_ESTIMATE_WINDOW) */
  window?: number;
  /** waits out a first use's estimate (default a timer that does not keep the process alive) */
  sleep?: (ms: number) => Promise<void>;
  /** told each tenant's padded first uses as they are counted (the worker's metric) */
  onPaddedFirstUses?: (tenantId: string, count: number) => void;
}

/** Per tier: the durations of its recent loads, and the bucketed estimate of the next one. */
export class LoadTimeEstimates {
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly floorMs = LOAD_ESTIMATE_FLOOR_MS,
    private readonly window = LOAD_ESTIMATE_WINDOW,
  ) {
    if (!(floorMs > 0)) throw new Error("load-time estimates: floorMs must be positive");
    if (!Number.isInteger(window) || window < 1)
      throw new Error("load-time estimates: window must be a positive integer");
  }

  /** Notes a load of an expert of this tier that took `ms`. */
  record(tierId: string, ms: number): void {
    const list = this.recent.get(tierId) ?? [];
    list.push(ms);
    if (list.length > this.window) list.shift();
    this.recent.set(tierId, list);
  }

  /** What a load from this tier takes, ms: a power of two, at least the floor. */
  estimateMs(tierId: string): number {
    const slowest = Math.max(0, ...(this.recent.get(tierId) ?? []));
    return Math.max(this.floorMs, nextPowerOfTwo(slowest));
  }
}

/** The smallest power of two ≥ ms (1 for ms ≤ 1). */
export function nextPowerOfTwo(ms: number): number {
  return ms <= 1 ? 1 : 2 ** Math.ceil(Math.log2(ms));
}

export class TimingDefence {
  readonly enabled: boolean;
  readonly clock: Clock;
  readonly estimates: LoadTimeEstimates;
  private readonly padded = new Map<string, number>();
  private readonly onPadded?: (tenantId: string, count: number) => void;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(opts: TimingDefenceOptions) {
    this.enabled = opts.enabled;
    this.onPadded = opts.onPaddedFirstUses;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
    this.clock = opts.clock ?? { nowMs: () => Date.now() };
    this.estimates = new LoadTimeEstimates(opts.floorMs, opts.window);
  }

  /** How long after its attempt started a token owing pads for these tiers may be emitted, ms (0: none owed or off). */
  padMs(tierIds: Iterable<string>): number {
    if (!this.enabled) return 0;
    let pad = 0;
    for (const t of tierIds) pad = Math.max(pad, this.estimates.estimateMs(t));
    return pad;
  }

  /** Settles after a load from this tier would have (its estimate), without keeping the process alive. */
  asIfLoading(tierId: string): Promise<void> {
    return this.sleep(this.estimates.estimateMs(tierId));
  }

  /** Counts padded first uses: per tenant, the experts a step used for it first (nothing when off). */
  notePaddedFirstUses(byTenant: ReadonlyMap<string, number>): void {
    if (!this.enabled) return;
    for (const [tenantId, n] of byTenant) {
      this.padded.set(tenantId, (this.padded.get(tenantId) ?? 0) + n);
      this.onPadded?.(tenantId, n);
    }
  }

  /** First uses of this tenant that were padded, since the runtime started. */
  paddedFirstUses(tenantId: string): number {
    return this.padded.get(tenantId) ?? 0;
  }
}
