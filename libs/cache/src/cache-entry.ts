import type { ExpertRef, ExpertSession, ExpertStoreContext } from "@lite/model";

/**
 * One expert in one worker, as the cache holds it.
 *  - WARM: `buffer` holds its verified file bytes (the ONNX model whose initializers are the
 *    weights). HOT: `session` is ready as well; a HOT entry keeps its buffer, so WARM ⊇ HOT
 *    and demoting HOT → WARM costs nothing. COLD: no entry at all (the file on disk).
 *  - Bytes are measured, not guessed: `bytes` is the verified file's length (checked equal
 *    to the signed manifest's size before any byte is used), which is the buffer's
 *    byteLength when WARM and what a HOT session's weights occupy when HOT.
 */
export type Residency = "HOT" | "WARM";
export const RESIDENCIES: readonly Residency[] = ["WARM", "HOT"];

export class CacheEntry {
  buffer?: Buffer;
  session?: ExpertSession;
  /** a promotion in flight; its bytes are already reserved in `reserved` */
  loading?: Promise<void>;
  readonly reserved = new Set<Residency>();
  /** per residency: the tenants charged for the entry → the accounting epoch of their last use */
  readonly users: Record<Residency, Map<string, number>> = { HOT: new Map(), WARM: new Map() };
  /** tenants that used the entry since it last became HOT (for `firstUseBy`) */
  seenBy = new Set<string>();
  /** tenants whose prefetch brought or joined it and that have not used it since → the epoch of that prefetch */
  readonly prefetchedBy = new Map<string, number>();
  leases = 0;
  /** the use clock at the last acquire or load: lower = less valuable (LRU on a counter, not wall time) */
  lastUse = 0;

  constructor(
    readonly id: string,
    readonly ref: ExpertRef,
    readonly ctx: ExpertStoreContext,
    readonly bytes: number,
  ) {}

  /** counts against capacity and charges in `level`: resident there or reserved by a load */
  holds(level: Residency): boolean {
    return this.reserved.has(level) || (level === "HOT" ? this.session !== undefined : this.buffer !== undefined);
  }

  /** may be evicted from `level` now: resident there, no lease, no load in flight */
  evictable(level: Residency): boolean {
    const resident = level === "HOT" ? this.session !== undefined : this.buffer !== undefined;
    return resident && this.leases === 0 && this.loading === undefined;
  }

  /** the ceil'd equal part of the bytes each user pays in `level` (ceil: never under-charges) */
  shareOf(level: Residency): number {
    const n = this.users[level].size;
    return n === 0 ? 0 : Math.ceil(this.bytes / n);
  }
}

/** LRU order on the use clock; the id breaks ties so eviction is deterministic. */
export function lessValuable(a: CacheEntry, b: CacheEntry): number {
  return a.lastUse - b.lastUse || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
