import type { ExpertRef, NeverHotTogether } from "@lite/model";
import { CacheError } from "./cache.errors";
import { CacheEntry, RESIDENCIES, type Residency } from "./cache-entry";
import type { CacheQuotaSource } from "./cache-quota";
import type { EvictionPolicy, ResidentExpert } from "./expert-residency.types";
import { TenantQuotas } from "./tenant-quotas";
import { TenantFigureBook, type CacheObserver, type TenantCacheFigures } from "./tenant-figures";
import { chargeOf, chargesIn, fairVictim, heldIn, lruVictim, ownVictim, usedIn } from "./victim-choice";

export interface ResidencyAccountsOptions {
  /** bytes a level holds (ExpertResidency's capacities) */
  capacity(level: Residency): number;
  quotas: CacheQuotaSource;
  epochUses: number;
  eviction: EvictionPolicy;
  observer?: CacheObserver;
  /** something a waiting load may want changed (an epoch ended) */
  changed(): void;
}

/**
 * The expert cache's books, behind ExpertResidency (expert-residency.ts): its entries, who
 * is charged for each in HOT and WARM, the use clock and its epochs, the tenants' quotas, and
 * every eviction (a tenant's own entries over its quota, victim-choice.ts's picks over a
 * level's capacity). Nothing here waits; the loads, leases and waits are ExpertResidency's.
 *
 *   - `join`: tenants become users of a HOT entry (charged in WARM and HOT), each within its
 *     quotas after evicting its own idle entries; all or nothing (a use's step 3);
 *   - `reserve`: a load's entry counted and charged in WARM then HOT, evicting what must go
 *     (`fairVictim`, or `lruVictim` for the "lru" baseline); all or nothing;
 *   - `countUse`: the use clock; every `epochUses` uses an epoch ends: users idle for a whole
 *     epoch stop being charged (leased entries keep theirs until the next end), prefetches
 *     unused since the epoch before count as wasted, then every tenant is fitted to its quotas;
 *   - `fitLowered`: a lowered quota takes the tenant's idle entries now, and its leased ones
 *     as their leases end (`refitOverQuota`);
 *   - `neverHotTogether`, `assertCanEverHold`: what no capacity or quota could ever hold.
 */
export class ResidencyAccounts {
  readonly entries = new Map<string, CacheEntry>();
  readonly quotas: TenantQuotas;
  readonly book: TenantFigureBook;
  /** the use clock: acquires and load reservations; gives LRU order */
  private clock = 0;
  private acquires = 0;
  private epochNow = 0;
  /** tenants over a lowered quota whose own entries were all leased: fitted again as leases end */
  private readonly overQuota = new Set<string>();

  constructor(private readonly opts: ResidencyAccountsOptions) {
    this.book = new TenantFigureBook(opts.observer);
    // A lowered quota takes effect at once on the tenant's idle entries.
    this.quotas = new TenantQuotas(opts.quotas, (t) => this.fitLowered(t));
  }

  /** The current epoch (users' and prefetches' marks). */
  get epoch(): number {
    return this.epochNow;
  }

  /** The next tick of the use clock (an entry's `lastUse`). */
  tick(): number {
    return ++this.clock;
  }

  /** A lease ended: tenants over a lowered quota fit again. */
  refitOverQuota(): void {
    for (const t of [...this.overQuota]) this.fitLowered(t);
  }

  /** A lowered quota: the tenant's idle entries go now, leased ones as their leases end. */
  fitLowered(tenantId: string): void {
    const fits = RESIDENCIES.map((level) => this.fitQuota(tenantId, level, undefined, new Set([tenantId])));
    if (fits.every(Boolean)) this.overQuota.delete(tenantId);
    else this.overQuota.add(tenantId);
  }

  /** Evicts the tenant's own least valuable idle entries until its charge fits its quota. */
  private fitQuota(tenantId: string, level: Residency, except: CacheEntry | undefined, causers: ReadonlySet<string>) {
    const quota = this.quotas.bytes(tenantId, level);
    // A plain global LRU (the benchmark baseline) knows no tenants: no quota holds.
    if (quota === undefined || this.opts.eviction === "lru") return true;
    while (chargeOf(this.entries.values(), level, tenantId) > quota) {
      const victim = ownVictim(this.entries.values(), level, tenantId, except);
      if (!victim) return false;
      this.evict(victim, level, causers);
    }
    return true;
  }

  countUse(): void {
    this.acquires++;
    const epoch = Math.floor(this.acquires / this.opts.epochUses);
    if (epoch > this.epochNow) {
      this.epochNow = epoch;
      this.endEpoch();
    }
  }

  /** Uncharges users idle for a whole epoch (leased entries keep theirs until the next end). */
  private endEpoch(): void {
    for (const e of this.entries.values()) {
      for (const [t, prefetchEpoch] of e.prefetchedBy)
        if (prefetchEpoch < this.epochNow - 1) {
          e.prefetchedBy.delete(t);
          this.book.prefetchWasted(t, e.bytes);
        }
      if (e.leases > 0 || e.loading) continue;
      for (const level of RESIDENCIES)
        for (const [t, last] of e.users[level]) if (last < this.epochNow - 1) e.users[level].delete(t);
    }
    for (const t of this.quotas.tenants())
      for (const level of RESIDENCIES) this.fitQuota(t, level, undefined, new Set([t]));
    this.opts.changed();
  }

  /**
   * The tenants become users of a HOT entry (charged in WARM and HOT), each within its
   * quotas after evicting its own idle entries; all or nothing.
   */
  join(e: CacheEntry, tenants: ReadonlySet<string>): boolean {
    // The common case on the decode path: users already, so no charge moves; only their epochs.
    if ([...tenants].every((t) => e.users.HOT.has(t) && e.users.WARM.has(t))) {
      for (const level of RESIDENCIES) for (const t of tenants) e.users[level].set(t, this.epochNow);
      return true;
    }
    const undo = this.snapshotUsers(e);
    for (const level of RESIDENCIES) {
      for (const t of tenants) e.users[level].set(t, this.epochNow);
      for (const t of tenants)
        if (!this.fitQuota(t, level, e, tenants)) {
          undo();
          return false;
        }
    }
    return true;
  }

  /** Counts and charges the entry in WARM and HOT for the loaders, evicting what must go; all or nothing. */
  reserve(e: CacheEntry, loaders: ReadonlySet<string>): boolean {
    const isNew = !this.entries.has(e.id);
    if (isNew) this.entries.set(e.id, e);
    const undoUsers = this.snapshotUsers(e);
    const fail = () => {
      undoUsers();
      e.reserved.clear();
      if (isNew) this.entries.delete(e.id);
      return false;
    };
    for (const level of RESIDENCIES) {
      for (const t of loaders) e.users[level].set(t, this.epochNow);
      if (!e.holds(level)) e.reserved.add(level);
      for (const t of loaders) if (!this.fitQuota(t, level, e, loaders)) return fail();
      while (this.usedBytes(level) > this.opts.capacity(level)) {
        const victim =
          this.opts.eviction === "lru"
            ? lruVictim(this.entries.values(), level, e)
            : fairVictim({
                entries: [...this.entries.values()],
                level,
                capacityBytes: this.opts.capacity(level),
                loaders,
                loading: e,
                weightOf: this.quotas.weightOf,
              });
        if (!victim) return fail();
        this.evict(victim, level, loaders);
      }
    }
    e.lastUse = ++this.clock;
    return true;
  }

  /** Closing: the entry goes COLD without counting as an eviction. */
  drop(e: CacheEntry): void {
    this.evict(e, "WARM", new Set(), false);
  }

  evict(e: CacheEntry, level: Residency, causers: ReadonlySet<string>, counted = true): void {
    const sufferers = new Set(e.users.HOT.keys());
    if (level === "WARM") for (const t of e.users.WARM.keys()) sufferers.add(t);
    if (e.session) {
      const session = e.session;
      e.session = undefined;
      session.release().catch(() => undefined);
    }
    e.users.HOT.clear();
    e.seenBy = new Set();
    if (level === "WARM") {
      e.buffer?.fill(0);
      e.buffer = undefined;
      e.users.WARM.clear();
      this.entries.delete(e.id);
    }
    if (counted) {
      this.book.evicted(level, [...sufferers].sort(), causers);
      for (const t of e.prefetchedBy.keys()) this.book.prefetchWasted(t, e.bytes);
    }
    e.prefetchedBy.clear();
  }

  private snapshotUsers(e: CacheEntry): () => void {
    const saved = { HOT: new Map(e.users.HOT), WARM: new Map(e.users.WARM) };
    return () => {
      for (const level of RESIDENCIES) {
        e.users[level].clear();
        for (const [t, epoch] of saved[level]) e.users[level].set(t, epoch);
      }
    };
  }

  /**
   * Why these experts can never be HOT at once for the tenant: their bytes over a level's
   * capacity, or over its known hotMemoryBytes / warmMemoryBytes (with "fair" eviction).
   * Counted whole: a part shared with another tenant may stop being shared at any time.
   */
  neverHotTogether(refs: readonly ExpertRef[], tenantId: string): NeverHotTogether | undefined {
    const bytes = refs.reduce((sum, r) => sum + r.file.bytes, 0);
    for (const level of RESIDENCIES)
      if (bytes > this.opts.capacity(level))
        return {
          code: "CAPACITY_TOO_SMALL",
          limit: `${level}_CAPACITY_BYTES of this worker (${this.opts.capacity(level)})`,
        };
    if (this.opts.eviction === "lru") return undefined;
    for (const level of RESIDENCIES) {
      const quota = this.quotas.bytes(tenantId, level);
      const field = level === "HOT" ? "hotMemoryBytes" : "warmMemoryBytes";
      if (quota !== undefined && bytes > quota)
        return { code: "QUOTA_EXCEEDED", limit: `${field} of tenant ${tenantId} (${quota})` };
    }
    return undefined;
  }

  /** Refuses at once a load no capacity or quota of its loaders could ever hold. */
  assertCanEverHold(ref: ExpertRef, loaders: ReadonlySet<string>): void {
    for (const level of RESIDENCIES)
      if (ref.file.bytes > this.opts.capacity(level))
        throw new CacheError(
          "CAPACITY_TOO_SMALL",
          `${level}_CAPACITY_BYTES (${this.opts.capacity(level)}) cannot hold expert ${ref.key} (${ref.file.bytes} bytes)`,
          { expert: ref.key, bytes: ref.file.bytes },
        );
    this.quotas.assertCanHold(ref, loaders);
  }

  /** The tenant's figures in this worker (bytes charged now, counters since start). */
  tenantFigures(tenantId: string): TenantCacheFigures {
    return this.book.figures(tenantId, {
      hotBytes: chargeOf(this.entries.values(), "HOT", tenantId),
      warmBytes: chargeOf(this.entries.values(), "WARM", tenantId),
    });
  }

  /** Every tenant seen so far, by id. */
  figures(): TenantCacheFigures[] {
    const hot = chargesIn(this.entries.values(), "HOT");
    const warm = chargesIn(this.entries.values(), "WARM");
    const tenants = new Set([...this.book.tenants(), ...hot.keys(), ...warm.keys()]);
    return [...tenants]
      .sort()
      .map((t) => this.book.figures(t, { hotBytes: hot.get(t) ?? 0, warmBytes: warm.get(t) ?? 0 }));
  }

  /** Bytes held (resident or reserved by a load) in a level. */
  usedBytes(level: Residency): number {
    return usedIn(this.entries.values(), level);
  }

  /** Whole bytes of the entries each tenant uses in a level (its live metrics: no sharing shown). */
  heldBytes(level: Residency): Map<string, number> {
    return heldIn(this.entries.values(), level);
  }

  /** Bytes charged to each tenant in a level. */
  charges(level: Residency): Map<string, number> {
    return chargesIn(this.entries.values(), level);
  }

  /** What is resident, by entry id (`<view>|<expert key>`), sorted: for tests and tools. */
  resident(): ResidentExpert[] {
    return [...this.entries.values()]
      .filter((e) => e.buffer !== undefined)
      .map((e) => ({
        id: e.id,
        level: (e.session ? "HOT" : "WARM") as Residency,
        bytes: e.bytes,
        leases: e.leases,
        hotUsers: [...e.users.HOT.keys()].sort(),
        warmUsers: [...e.users.WARM.keys()].sort(),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}
