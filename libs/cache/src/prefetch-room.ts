import { lessValuable, type CacheEntry, type Residency } from "./cache-entry";
import { chargeOf, usedIn } from "./victim-choice";

/**
 * Where a prefetch may put an expert, as pure functions over the entries. A prefetch is a
 * guess, so it takes only room nobody pays for:
 *   1. a level has room for it when the free bytes plus those of idle orphans (entries
 *      charged to nobody, evicted first by any load) cover its bytes; no entry anyone is
 *      charged for is ever evicted by a prefetch, the tenant's own included;
 *   2. the tenant's charge in the level plus the expert's whole bytes stays within its quota
 *      (no own eviction either);
 *   Both are asked as if the expert were not resident, also when another tenant holds it
 *   (then nothing is evicted and the tenant joins it): whether a prefetch happens, and so
 *   its bytes and the tenant's series, never depends on another tenant holding that expert;
 *   3. the target is HOT when WARM and HOT both have room (COLD → WARM → HOT, or WARM → HOT,
 *      or joining an entry already HOT); else WARM when WARM has room (COLD → WARM, or
 *      joining an entry already WARM); else nothing.
 */

export interface RoomOptions {
  entries: readonly CacheEntry[];
  capacityBytes(level: Residency): number;
  quotaBytes(tenantId: string, level: Residency): number | undefined;
}

export interface PrefetchPlan {
  target: Residency;
  /** the levels the tenant joins (charged there), WARM first */
  levels: Residency[];
  /** idle orphans to evict first, per level */
  orphans: { entry: CacheEntry; level: Residency }[];
  /** the file must be read (COLD) or a session created (WARM → HOT) */
  loads: boolean;
}

/**
 * The idle orphans whose eviction makes room for `bytes` more in `level` (none needed: []),
 * or undefined when there is no such room or the tenant's quota cannot take its part.
 */
export function roomFor(
  o: RoomOptions,
  level: Residency,
  entry: CacheEntry | undefined,
  tenantId: string,
  bytes: number,
): CacheEntry[] | undefined {
  const holds = entry?.holds(level) ?? false;
  const quota = o.quotaBytes(tenantId, level);
  if (quota !== undefined) {
    const mine = holds && entry!.users[level].has(tenantId) ? entry!.shareOf(level) : 0;
    if (chargeOf(o.entries, level, tenantId) - mine + bytes > quota) return undefined;
  }
  let need = usedIn(o.entries, level) + bytes - o.capacityBytes(level);
  if (need <= 0) return [];
  const orphans = o.entries
    .filter(
      (e) =>
        e !== entry && e.evictable(level) && e.users[level].size === 0 && (level === "HOT" || e.users.HOT.size === 0),
    )
    .sort(lessValuable);
  const chosen: CacheEntry[] = [];
  for (const e of orphans) {
    if (need <= 0) break;
    chosen.push(e);
    need -= e.bytes;
  }
  if (need > 0) return undefined;
  // Held already: the room was asked as if it were not, but nothing needs to go.
  return holds ? [] : chosen;
}

/** What a prefetch of `bytes` for the tenant would do; undefined when it cannot (or need not). */
export function planPrefetch(
  o: RoomOptions,
  entry: CacheEntry | undefined,
  tenantId: string,
  bytes: number,
): PrefetchPlan | undefined {
  if (entry?.session && entry.users.HOT.has(tenantId)) return undefined;
  const warmJoined = entry?.buffer !== undefined && entry.users.WARM.has(tenantId);
  const warm = warmJoined ? [] : roomFor(o, "WARM", entry, tenantId, bytes);
  const hot = roomFor(o, "HOT", entry, tenantId, bytes);
  if (warm && hot)
    return {
      target: "HOT",
      levels: ["WARM", "HOT"],
      orphans: [
        ...warm.map((e) => ({ entry: e, level: "WARM" as const })),
        ...hot.map((e) => ({ entry: e, level: "HOT" as const })),
      ],
      loads: entry?.session === undefined,
    };
  if (warm && !warmJoined)
    return {
      target: "WARM",
      levels: ["WARM"],
      orphans: warm.map((e) => ({ entry: e, level: "WARM" as const })),
      loads: entry?.buffer === undefined,
    };
  return undefined;
}
