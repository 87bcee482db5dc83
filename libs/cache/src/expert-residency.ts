import { readVerifiedFileAsync } from "@lite/manifest";
import { createExpertSession, type ExpertLease, type ExpertRef, type NeverHotTogether } from "@lite/model";
import { CacheError } from "./cache.errors";
import { CacheEntry, RESIDENCIES, type Residency } from "./cache-entry";
import {
  DEFAULT_EPOCH_USES,
  DEFAULT_LOAD_BURST_MS,
  DEFAULT_LOAD_SHARE,
  type ExpertResidencyOptions,
  type PrefetchOutcome,
  type ResidencyView,
  type ResidentExpert,
} from "./expert-residency.types";
import { LoadGovernor } from "./load-governor";
import { planPrefetch } from "./prefetch-room";
import { ResidencyAccounts } from "./residency-accounts";
import type { TenantQuotas } from "./tenant-quotas";
import type { TenantFigureBook, TenantCacheFigures } from "./tenant-figures";

/**
 * The worker-wide expert cache behind every model's TieredExpertStore: residency (HOT, WARM,
 * COLD), per-tenant charges, quotas and fair eviction (victim-choice.ts), per-tenant figures.
 *
 * A use (`acquire`, on the decode step, never waits):
 *   1. the entry must be HOT with no load in flight, and every tenant's quota known;
 *   2. the use clock ticks; every `epochUses` uses an epoch ends (step 6);
 *   3. the tenants join the entry's users in WARM and HOT (charged their equal part);
 *      a tenant then over a quota evicts its own least valuable idle entries; if that is
 *      not enough the use is refused (undefined: `load` will wait for a lease to end);
 *   4. a lease holds the entry: never evicted or released until every lease is released;
 *   5. `firstUseBy` = the tenants not in the entry's `seenBy` (reset when it becomes HOT).
 *   6. epoch end: on idle entries, users whose last use is older than the previous epoch
 *      stop being charged (their parts move to the remaining users, or the entry becomes an
 *      orphan); then every tenant over a quota evicts its own entries as in 3.
 * A load (`load`, off the step, may wait):
 *   1. the tenants' quotas are read (awaited); a quota or a capacity that can never hold
 *      the expert is refused at once (CacheError);
 *   2. HOT and not loading: join as a use does (step 3 above), waiting while it cannot;
 *      loading: wait for that load, then start again;
 *   3. else reserve: for WARM then HOT, the entry is counted (reserved) and charged to the
 *      loaders; each loader over a quota evicts its own entries; while the level is over
 *      capacity, `fairVictim` picks the next eviction. If anything cannot be made to fit,
 *      the reservation is undone and the load waits for the next change (a lease released,
 *      a load ended, an epoch ended) and starts again: the cache never over-fills;
 *   4. read and verify the file (COLD → WARM: libuv's thread pool, off the JS thread) and
 *      create the session (→ HOT: onnxruntime does it ON the JS thread, so through the
 *      load governor, load-governor.ts: at most `loadShare` of the thread, the tenants
 *      causing most load work waiting behind their own loads); `seenBy` starts empty.
 * Evicting from HOT releases the session (the entry stays WARM); from WARM zeroes the bytes
 * and drops the entry (COLD), session included.
 * A prefetch (`prefetch`, off the step, for one tenant; expert-prefetcher.ts queues them):
 *   1. after any load in flight of the expert ends: nothing when the tenant already uses it HOT;
 *   2. plan (prefetch-room.ts): HOT if WARM and HOT have room, else WARM, else nothing —
 *      room being free bytes or idle orphans, within the tenant's quotas: a prefetch never
 *      evicts an entry anyone is charged for;
 *   3. `admit(bytes)` (the tenant's bucket) may refuse: counted as throttled, nothing done;
 *   4. the tenant joins the entry's users in the planned levels (charged) and is marked as
 *      its prefetcher; the expert's bytes count as prefetched for it — also when it joins an
 *      entry already resident, so its figures do not tell whether another tenant held it;
 *   5. a file read (async, off the event loop) and, for HOT, a session; `seenBy` starts empty,
 *      so the tenant's first use is padded as any first use.
 * The tenant's first use clears its mark; an eviction (HOT or WARM) or the end of the epoch
 * after its prefetch's, before a use, counts the bytes as wasted.
 */

export class ExpertResidency {
  private readonly accounts: ResidencyAccounts;
  private readonly entries: Map<string, CacheEntry>;
  private readonly quotas: TenantQuotas;
  private readonly book: TenantFigureBook;
  private waiters: (() => void)[] = [];
  /** session creations: their share of the JS thread and their order across tenants */
  readonly loadGovernor: LoadGovernor;
  private closed = false;

  constructor(private readonly opts: ExpertResidencyOptions) {
    for (const [name, v] of [
      ["hotCapacityBytes", opts.hotCapacityBytes],
      ["warmCapacityBytes", opts.warmCapacityBytes],
    ] as const)
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    if (opts.eviction !== undefined && opts.eviction !== "fair" && opts.eviction !== "lru")
      throw new RangeError(`eviction must be "fair" or "lru", got ${String(opts.eviction)}`);
    const epochUses = opts.epochUses ?? DEFAULT_EPOCH_USES;
    if (!Number.isSafeInteger(epochUses) || epochUses < 1)
      throw new RangeError(`epochUses must be a positive integer, got ${epochUses}`);
    this.accounts = new ResidencyAccounts({
      capacity: (level) => this.capacity(level),
      quotas: opts.quotas,
      epochUses,
      eviction: opts.eviction ?? "fair",
      observer: opts.observer,
      changed: () => this.changed(),
    });
    ({ entries: this.entries, quotas: this.quotas, book: this.book } = this.accounts);
    this.loadGovernor = new LoadGovernor({
      share: opts.loadShare ?? DEFAULT_LOAD_SHARE,
      burstMs: opts.loadBurstMs ?? DEFAULT_LOAD_BURST_MS,
      weightOf: this.quotas.weightOf,
      contended: opts.loadContended,
    });
  }

  capacity(level: Residency): number {
    return level === "HOT" ? this.opts.hotCapacityBytes : this.opts.warmCapacityBytes;
  }

  /**
   * Refuses a model one token of which needs more bytes than a level holds: its loads would
   * evict each other forever (working-set.ts computes the need).
   */
  assertFits(modelName: string, tokenBytes: number): void {
    for (const level of RESIDENCIES) {
      const name = level === "HOT" ? "HOT_CAPACITY_BYTES" : "WARM_CAPACITY_BYTES";
      if (this.capacity(level) < tokenBytes)
        throw new CacheError(
          "CAPACITY_TOO_SMALL",
          `${name} (${this.capacity(level)}) is smaller than what one token of model ${modelName} needs (${tokenBytes} bytes: experts per token across layers × the largest expert)`,
          { modelName, tokenBytes, capacityBytes: this.capacity(level) },
        );
    }
  }

  /** Why these experts can never be HOT at once for the tenant (ResidencyAccounts.neverHotTogether). */
  neverHotTogether(refs: readonly ExpertRef[], tenantId: string): NeverHotTogether | undefined {
    return this.accounts.neverHotTogether(refs, tenantId);
  }

  acquire(view: ResidencyView, ref: ExpertRef, tenants: ReadonlySet<string>): ExpertLease | undefined {
    const e = this.entries.get(entryId(view, ref));
    if (!this.usable(e) || !this.quotas.allKnown(tenants)) return undefined;
    return this.use(e, tenants);
  }

  async load(view: ResidencyView, ref: ExpertRef, tenants: ReadonlySet<string>): Promise<void> {
    await this.bring(view, ref, tenants, false);
  }

  /**
   * `load` then a use, taken as the load ends (before any other waiting load runs), so a
   * crowd of waiting loads cannot evict each other's experts before they are used.
   */
  async get(view: ResidencyView, ref: ExpertRef, tenants: ReadonlySet<string>): Promise<ExpertLease> {
    for (;;) {
      const lease = await this.bring(view, ref, tenants, true);
      if (lease) return lease;
    }
  }

  /** A prefetch for one tenant (steps in the file comment); never evicts a charged entry. */
  async prefetch(
    view: ResidencyView,
    ref: ExpertRef,
    tenantId: string,
    admit: (bytes: number) => boolean,
  ): Promise<PrefetchOutcome> {
    const me = new Set([tenantId]);
    await this.quotas.learnAll(me);
    for (;;) {
      if (this.closed) return "closed";
      const id = entryId(view, ref);
      const e = this.entries.get(id);
      if (e?.loading) {
        await e.loading.catch(() => undefined);
        continue;
      }
      if (e?.session && e.users.HOT.has(tenantId)) return "resident";
      const plan = planPrefetch(
        {
          entries: [...this.entries.values()],
          capacityBytes: (level) => this.capacity(level),
          quotaBytes: (t, level) => this.quotas.bytes(t, level),
        },
        e,
        tenantId,
        ref.file.bytes,
      );
      if (!plan) return e?.buffer && e.users.WARM.has(tenantId) ? "resident" : "no-room";
      if (!admit(ref.file.bytes)) {
        this.book.prefetchThrottled(tenantId);
        return "throttled";
      }
      this.book.prefetched(tenantId, ref.tierId, ref.file.bytes);
      const entry = e ?? new CacheEntry(id, ref, view.ctx, ref.file.bytes);
      this.entries.set(id, entry);
      for (const v of plan.orphans)
        if (this.entries.has(v.entry.id) && v.entry.evictable(v.level)) this.accounts.evict(v.entry, v.level, me);
      for (const level of plan.levels) {
        entry.users[level].set(tenantId, this.accounts.epoch);
        if (!entry.holds(level)) entry.reserved.add(level);
      }
      entry.prefetchedBy.set(tenantId, this.accounts.epoch);
      entry.lastUse = this.accounts.tick();
      if (!plan.loads) {
        this.changed();
        return plan.target;
      }
      await this.promote(entry, me, false, { hot: plan.target === "HOT", prefetch: true });
      return plan.target;
    }
  }

  private async bring(
    view: ResidencyView,
    ref: ExpertRef,
    tenants: ReadonlySet<string>,
    take: boolean,
  ): Promise<ExpertLease | undefined> {
    const loaders = new Set(tenants);
    await this.quotas.learnAll(loaders);
    this.accounts.assertCanEverHold(ref, loaders);
    for (;;) {
      if (this.closed) throw new Error("expert cache is closed");
      const id = entryId(view, ref);
      const e = this.entries.get(id);
      if (e?.loading) {
        await e.loading.catch(() => undefined);
      } else if (e?.session) {
        if (this.accounts.join(e, loaders)) return take ? this.use(e, loaders) : undefined;
        await this.nextChange();
      } else {
        const entry = e ?? new CacheEntry(id, ref, view.ctx, ref.file.bytes);
        if (this.accounts.reserve(entry, loaders)) return this.promote(entry, loaders, take);
        await this.nextChange();
      }
    }
  }

  /** Drops a view's entries (its runtime is closing; nothing of it is leased any more). */
  async dropView(view: ResidencyView): Promise<void> {
    const mine = [...this.entries.values()].filter((e) => e.id.startsWith(`${view.id}|`));
    await Promise.all(mine.map((e) => e.loading?.catch(() => undefined)));
    for (const e of mine) if (this.entries.has(e.id)) this.accounts.drop(e);
    this.changed();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loadGovernor.close();
    this.changed();
    await Promise.all([...this.entries.values()].map((e) => e.loading?.catch(() => undefined)));
    for (const e of [...this.entries.values()]) this.accounts.drop(e);
  }

  /** The tenant's figures in this worker (bytes charged now, counters since start). */
  tenantFigures(tenantId: string): TenantCacheFigures {
    return this.accounts.tenantFigures(tenantId);
  }

  /** Every tenant seen so far, by id. */
  figures(): TenantCacheFigures[] {
    return this.accounts.figures();
  }

  /** Loads waiting for room (for a lease to end, a load to finish or an epoch to end). */
  get waitingLoads(): number {
    return this.waiters.length;
  }

  /** Bytes held (resident or reserved by a load) in a level. */
  usedBytes(level: Residency): number {
    return this.accounts.usedBytes(level);
  }

  /** Whole bytes of the entries each tenant uses in a level (its live metrics: no sharing shown). */
  heldBytes(level: Residency): Map<string, number> {
    return this.accounts.heldBytes(level);
  }

  /** Bytes charged to each tenant in a level. */
  charges(level: Residency): Map<string, number> {
    return this.accounts.charges(level);
  }

  /** What is resident, by entry id (`<view>|<expert key>`), sorted: for tests and tools. */
  resident(): ResidentExpert[] {
    return this.accounts.resident();
  }

  /** Whether the tenant already uses the expert HOT: its own state only, nothing of others'. */
  usedHotBy(view: ResidencyView, ref: ExpertRef, tenantId: string): boolean {
    const e = this.entries.get(entryId(view, ref));
    return e?.session !== undefined && e.loading === undefined && e.users.HOT.has(tenantId);
  }

  levelOf(view: ResidencyView, ref: ExpertRef): Residency | "COLD" {
    const e = this.entries.get(entryId(view, ref));
    return e?.session ? "HOT" : e?.buffer ? "WARM" : "COLD";
  }

  private usable(e: CacheEntry | undefined): e is CacheEntry {
    return !this.closed && e?.session !== undefined && e.loading === undefined;
  }

  /** A use of a HOT entry: counted on the clock (an epoch may end), charged, leased. */
  private use(e: CacheEntry, tenants: ReadonlySet<string>): ExpertLease | undefined {
    this.accounts.countUse();
    // The epoch's end may have evicted it.
    if (!this.usable(e) || !this.accounts.join(e, tenants)) return undefined;
    e.leases++;
    e.lastUse = this.accounts.tick();
    for (const t of tenants) if (e.prefetchedBy.delete(t)) this.book.prefetchUsed(t);
    const firstUseBy = new Set([...tenants].filter((t) => !e.seenBy.has(t)));
    for (const t of tenants) {
      e.seenBy.add(t);
      this.book.used(t, !firstUseBy.has(t));
    }
    return this.leaseOf(e, firstUseBy);
  }

  private leaseOf(e: CacheEntry, firstUseBy: ReadonlySet<string>): ExpertLease {
    let released = false;
    return {
      session: e.session!,
      firstUseBy,
      release: () => {
        if (released) return;
        released = true;
        e.leases--;
        if (e.leases > 0) return;
        this.accounts.refitOverQuota();
        this.changed();
      },
    };
  }

  // ---- loads --------------------------------------------------------------------------

  private async promote(
    e: CacheEntry,
    loaders: ReadonlySet<string>,
    take: boolean,
    how = { hot: true, prefetch: false },
  ): Promise<ExpertLease | undefined> {
    e.loading = (async () => {
      // Off the caller's synchronous path: the decode step that asked goes on first.
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Read and hashed off the event loop (libuv's pool): a load must not hold up the steps.
      e.buffer ??= await readVerifiedFileAsync(e.ctx.root, e.ref.file);
      // The session is built on the JS thread: within the loads' share of it, fairly ordered.
      const buffer = e.buffer;
      if (how.hot) e.session = await this.loadGovernor.run(loaders, () => createExpertSession(buffer, e.ctx));
    })();
    try {
      await e.loading;
      if (how.hot) e.seenBy = new Set();
      if (!how.prefetch) for (const t of loaders) this.book.loaded(t, e.ref.tierId);
      e.loading = undefined;
      e.reserved.clear();
      return take && !this.closed ? this.use(e, loaders) : undefined;
    } catch (err) {
      e.users.HOT.clear();
      if (!e.buffer) {
        e.users.WARM.clear();
        this.entries.delete(e.id);
      }
      throw err;
    } finally {
      e.loading = undefined;
      e.reserved.clear();
      if (this.closed && this.entries.has(e.id)) this.accounts.drop(e);
      this.changed();
    }
  }

  private nextChange(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private changed(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

function entryId(view: ResidencyView, ref: ExpertRef): string {
  return `${view.id}|${ref.key}`;
}
