/**
 * The share of a worker's JS thread that expert loads may take, and which tenant's load goes
 * next. onnxruntime-node builds a session synchronously on the JS thread (its
 * `InferenceSession.create` runs the whole parse and initialisation in one setImmediate
 * callback), the thread every decode step of every tenant needs: a tenant whose experts
 * keep going cold (a small quota, wandering routes) made ~215 loads/s and doubled another
 * tenant's inter-token latency (bench coldload, 2.16×). So:
 *   1. a load's session creation runs through `run`, one at a time;
 *   2. a budget in ms of that work, refilled at `share` ms per ms of wall time and holding at
 *      most `burstMs`: a creation starts only when the budget is not in debt; its measured
 *      wall time is taken from the budget after it (so a long one goes into debt and the next
 *      waits it off). Loads then take about `share` of the thread at most, spread out
 *      instead of back to back. The budget binds only while `contended()` says a decode step
 *      wants the thread: a worker with nothing else to step (a fresh worker's first
 *      completion, every held sequence parked on these loads) loads back to back and owes
 *      nothing for it (work-conserving: the sidechannel bench's fresh-worker trials took
 *      18 s instead of 4 when idle loads were throttled too);
 *   3. who goes next: start-time fair queuing over tenants. Each tenant has a virtual time;
 *      a load's measured ms, split equally between its loaders, advance each loader's by
 *      ms ÷ weight; the queued load whose first loader has the least virtual time goes next
 *      (FIFO within a tenant; a tenant that starts queuing again starts at the virtual time
 *      of the last load served, so past idleness earns it no burst). A tenant that causes
 *      many loads waits behind its own: another tenant's occasional load goes ahead of them.
 * `close()` lifts the budget (a closing cache runs what is queued without waiting).
 * Share 1 (or more): no budget, order still fair.
 */

/** how often a governor waiting off its debt looks again whether a decode step still wants the thread */
const CONTENTION_RECHECK_MS = 10;

export interface LoadGovernorOptions {
  /** fraction of wall time loads' session creations may take, in (0, 1]; 1 = unbounded */
  share: number;
  /** ms of load work that may run back to back after an idle time */
  burstMs: number;
  /** a tenant's weight (its quota's); default 1 */
  weightOf?: (tenantId: string) => number;
  /**
   * whether a decode step wants the JS thread now (some held sequence may step); the budget
   * binds only then. Default: always (the budget always binds).
   */
  contended?: () => boolean;
  /** ms clock (tests); default performance.now */
  now?: () => number;
  /** waits ms (tests); default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

interface Job {
  tenants: string[];
  start(): void;
}

export class LoadGovernor {
  private readonly queues = new Map<string, Job[]>();
  private readonly vt = new Map<string, number>();
  private globalVt = 0;
  private budgetMs: number;
  private lastRefill: number;
  private busy = false;
  private closed = false;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** ms of session creation run, by the tenants charged (split equally): the figures tests and metrics read */
  private readonly charged = new Map<string, number>();

  constructor(private readonly opts: LoadGovernorOptions) {
    if (!(opts.share > 0)) throw new RangeError(`load share must be > 0, got ${opts.share}`);
    if (!(opts.burstMs >= 0)) throw new RangeError(`load burstMs must be ≥ 0, got ${opts.burstMs}`);
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.budgetMs = opts.burstMs;
    this.lastRefill = this.now();
  }

  /** Runs `work` (a session creation) when its turn and the budget allow; charged to `tenants`. */
  run<T>(tenants: ReadonlySet<string>, work: () => Promise<T>): Promise<T> {
    const loaders = [...tenants].sort();
    const key = loaders[0] ?? "";
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        tenants: loaders,
        start: () => {
          const t0 = this.now();
          let p: Promise<T>;
          try {
            p = work();
          } catch (e) {
            p = Promise.reject(e);
          }
          p.then(resolve, reject).finally(() => this.done(job, this.now() - t0));
        },
      };
      const queue = this.queues.get(key);
      if (queue) queue.push(job);
      else {
        this.queues.set(key, [job]);
        this.vt.set(key, Math.max(this.vt.get(key) ?? 0, this.globalVt));
      }
      this.pump();
    });
  }

  /** ms of session creation charged to the tenant so far */
  chargedMs(tenantId: string): number {
    return this.charged.get(tenantId) ?? 0;
  }

  /** Loads queued, not started. */
  get queued(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  close(): void {
    this.closed = true;
    this.pump();
  }

  private done(job: Job, ms: number): void {
    this.refill();
    if (!this.unbounded() && this.contended()) this.budgetMs -= ms;
    const part = ms / Math.max(1, job.tenants.length);
    for (const t of job.tenants) {
      this.charged.set(t, (this.charged.get(t) ?? 0) + part);
      const w = Math.max(1e-9, this.opts.weightOf?.(t) ?? 1);
      this.vt.set(t, Math.max(this.vt.get(t) ?? 0, this.globalVt) + part / w);
    }
    this.busy = false;
    this.pump();
  }

  private unbounded(): boolean {
    return this.closed || this.opts.share >= 1;
  }

  private contended(): boolean {
    return this.opts.contended?.() ?? true;
  }

  private refill(): void {
    const now = this.now();
    this.budgetMs = Math.min(this.opts.burstMs, this.budgetMs + (now - this.lastRefill) * this.opts.share);
    this.lastRefill = now;
  }

  private pump(): void {
    if (this.busy || this.queues.size === 0) return;
    this.refill();
    if (!this.unbounded() && this.budgetMs < 0 && this.contended()) {
      this.busy = true;
      // in slices: once nothing wants the thread, the queued loads go without waiting
      void this.sleep(Math.min(-this.budgetMs / this.opts.share, CONTENTION_RECHECK_MS)).then(() => {
        this.busy = false;
        this.pump();
      });
      return;
    }
    let next: string | undefined;
    for (const t of this.queues.keys()) {
      const v = this.vt.get(t) ?? 0;
      if (next === undefined || v < (this.vt.get(next) ?? 0) || (v === this.vt.get(next) && t < next)) next = t;
    }
    const queue = this.queues.get(next!)!;
    const job = queue.shift()!;
    if (queue.length === 0) this.queues.delete(next!);
    this.globalVt = Math.max(this.globalVt, this.vt.get(next!) ?? 0);
    this.busy = true;
    job.start();
  }
}
