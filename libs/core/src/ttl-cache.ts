import { systemClock, type Clock } from "./clock";

export interface TtlCacheOptions {
  /** how long a loaded value is served without asking the source again */
  ttlMs: number;
  /** entries kept at most; the oldest is dropped first */
  maxEntries: number;
  clock?: Clock;
}

/**
 * Values loaded from a source of truth (PostgreSQL), served for `ttlMs` and dropped at once
 * by `invalidate` (a writer that changed the source says so). A load that was in flight
 * when an invalidation came is answered but not kept: it may have read the old value.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAtMs: number }>();
  private generation = 0;
  private readonly clock: Clock;

  constructor(private readonly opts: TtlCacheOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const now = this.clock.nowMs();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAtMs > now) return hit.value;
    if (hit) this.entries.delete(key);
    const generation = this.generation;
    const value = await load();
    if (generation === this.generation && this.opts.ttlMs > 0) {
      if (this.entries.size >= this.opts.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(key, { value, expiresAtMs: now + this.opts.ttlMs });
    }
    return value;
  }

  /** Drops the entries whose key matches (every entry without a predicate). */
  invalidate(matches?: (key: string) => boolean): void {
    this.generation += 1;
    if (!matches) this.entries.clear();
    else for (const key of [...this.entries.keys()]) if (matches(key)) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
