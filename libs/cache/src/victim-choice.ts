import { lessValuable, type CacheEntry, type Residency } from "./cache-entry";

/**
 * Accounting and the choice of what to evict, as pure functions over the entries.
 *
 * Charging: an entry held in a level (resident or reserved) charges ceil(bytes ÷ n) to each
 * of its n users in that level. An entry with no users (its users' epochs all ended) is an
 * orphan: it counts against capacity, is charged to nobody and is evicted first.
 *
 * Eviction order for a load that needs room in a full level (`fairVictim`):
 *   1. orphans, least valuable first;
 *   2. then tenants by charge ÷ weighted share, largest first (ties by tenant id), where
 *      share = capacity × weight ÷ Σ weights of the tenants charged in the level plus the
 *      loaders, and the loaders' charges already include the load;
 *   3. a tenant may lose an entry only if it is over its share or is itself loading: its
 *      least valuable idle entry goes, one only it uses first (`soleFirst`). So the sole entries of a tenant within its share are
 *      never evicted by another tenant's load (one exception: `starving`, below).
 * At its quota a tenant evicts its own least valuable idle entries (`ownVictim`); entries in
 * use (leased) or being loaded are never candidates.
 */

export function usedIn(entries: Iterable<CacheEntry>, level: Residency): number {
  let used = 0;
  for (const e of entries) if (e.holds(level)) used += e.bytes;
  return used;
}

export function chargesIn(entries: Iterable<CacheEntry>, level: Residency): Map<string, number> {
  const charges = new Map<string, number>();
  for (const e of entries) {
    if (!e.holds(level)) continue;
    const share = e.shareOf(level);
    for (const t of e.users[level].keys()) charges.set(t, (charges.get(t) ?? 0) + share);
  }
  return charges;
}

/**
 * Whole bytes of the entries each tenant uses in a level (not its charged part, which
 * depends on how many other tenants share an entry): what a tenant may be shown.
 */
export function heldIn(entries: Iterable<CacheEntry>, level: Residency): Map<string, number> {
  const held = new Map<string, number>();
  for (const e of entries) {
    if (!e.holds(level)) continue;
    for (const t of e.users[level].keys()) held.set(t, (held.get(t) ?? 0) + e.bytes);
  }
  return held;
}

export function chargeOf(entries: Iterable<CacheEntry>, level: Residency, tenantId: string): number {
  let charge = 0;
  for (const e of entries) if (e.holds(level) && e.users[level].has(tenantId)) charge += e.shareOf(level);
  return charge;
}

function leastValuable(candidates: CacheEntry[]): CacheEntry | undefined {
  return candidates.length === 0 ? undefined : candidates.reduce((a, b) => (lessValuable(a, b) <= 0 ? a : b));
}

/**
 * The least valuable of the tenant's idle entries in `level`, its sole ones first: an entry
 * others use too is evicted for all of them, so it goes only when the tenant has no entry of
 * its own left (the memory benchmark's neighbour, at its quota, evicted the hot-tier entries
 * it shared with a victim, whose hit rate fell below plain LRU's).
 */
function soleFirst(candidates: CacheEntry[], level: Residency, tenantId: string): CacheEntry | undefined {
  const sole = candidates.filter((e) => e.users[level].size === 1 && e.users[level].has(tenantId));
  return leastValuable(sole) ?? leastValuable(candidates);
}

/** The tenant's own least valuable idle entry in `level` (any entry it is charged for, its sole ones first). */
export function ownVictim(
  entries: Iterable<CacheEntry>,
  level: Residency,
  tenantId: string,
  except: CacheEntry | undefined,
): CacheEntry | undefined {
  const own = [...entries].filter((e) => e !== except && e.evictable(level) && e.users[level].has(tenantId));
  return soleFirst(own, level, tenantId);
}

/**
 * The benchmark baseline (eviction "lru"): the least valuable idle entry of anyone in
 * `level`, whoever is charged for it — a plain global LRU that knows no tenants.
 */
export function lruVictim(
  entries: Iterable<CacheEntry>,
  level: Residency,
  loading: CacheEntry | undefined,
): CacheEntry | undefined {
  return leastValuable([...entries].filter((e) => e !== loading && e.evictable(level)));
}

export interface FairChoice {
  entries: readonly CacheEntry[];
  level: Residency;
  capacityBytes: number;
  /** the tenants the load is for */
  loaders: ReadonlySet<string>;
  /** the entry being loaded (reserved already, never its own victim) */
  loading: CacheEntry;
  weightOf(tenantId: string): number;
}

/** What to evict so a load fits a full level, or undefined when nothing may go (wait). */
export function fairVictim(c: FairChoice): CacheEntry | undefined {
  const idle = c.entries.filter((e) => e !== c.loading && e.evictable(c.level));
  const orphan = leastValuable(idle.filter((e) => e.users[c.level].size === 0));
  if (orphan) return orphan;
  const charges = chargesIn(c.entries, c.level);
  for (const t of c.loaders) if (!charges.has(t)) charges.set(t, 0);
  const totalWeight = [...charges.keys()].reduce((sum, t) => sum + c.weightOf(t), 0);
  const shareOf = (t: string) => (c.capacityBytes * c.weightOf(t)) / totalWeight;
  const ratio = (t: string) => charges.get(t)! / shareOf(t);
  const order = [...charges.keys()].sort((a, b) => ratio(b) - ratio(a) || (a < b ? -1 : a > b ? 1 : 0));
  const idleOf = (t: string) =>
    soleFirst(
      idle.filter((e) => e.users[c.level].has(t)),
      c.level,
      t,
    );
  for (const t of order) {
    if (!c.loaders.has(t) && charges.get(t)! <= shareOf(t)) continue;
    const victim = idleOf(t);
    if (victim) return victim;
  }
  return starving(c, charges, shareOf) ? order.map(idleOf).find((v) => v !== undefined) : undefined;
}

/**
 * The one exception to step 3: a loader that holds nothing else in the level and whose part
 * of this one expert is already more than its share (many tenants, a small weight) would
 * otherwise wait forever; it takes the least valuable idle entry of the tenant furthest over
 * (or nearest to) its share.
 */
function starving(c: FairChoice, charges: Map<string, number>, shareOf: (t: string) => number): boolean {
  const holdsOther = (t: string) =>
    c.entries.some((e) => e !== c.loading && e.holds(c.level) && e.users[c.level].has(t));
  return [...c.loaders].some((t) => !holdsOther(t) && charges.get(t)! > shareOf(t));
}
