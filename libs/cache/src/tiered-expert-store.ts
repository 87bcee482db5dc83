import type {
  ExpertLease,
  ExpertRef,
  ExpertStore,
  ExpertStoreContext,
  NeverHotTogether,
  PrefetchRequest,
} from "@lite/model";
import type { ExpertPrefetcher } from "./expert-prefetcher";
import type { ExpertResidency } from "./expert-residency";
import type { ResidencyView } from "./expert-residency.types";

let nextViewId = 0;

/**
 * One model runtime's ExpertStore over the worker-wide ExpertResidency (HOT/WARM/COLD,
 * per-tenant quotas, fair eviction): plug it in with loadModel's `expertStore` option,
 * `(ctx) => new TieredExpertStore(residency, ctx)`. Each store's entries are its own (two
 * runtimes of one model do not share sessions); capacity and charges are the worker's.
 */
export class TieredExpertStore implements ExpertStore, ResidencyView {
  readonly id = `m${nextViewId++}`;
  private closed = false;
  /**
   * Set only with an enabled prefetcher (the worker's, PREFETCH=on): the decode step computes
   * next-layer predictions only for a store that has it.
   */
  readonly prefetch?: (request: PrefetchRequest) => void;

  constructor(
    readonly residency: ExpertResidency,
    readonly ctx: ExpertStoreContext,
    prefetcher?: ExpertPrefetcher,
  ) {
    if (prefetcher?.enabled)
      this.prefetch = (request) => {
        if (!this.closed) prefetcher.request(this, request);
      };
  }

  /** HOT now: a lease charged to these tenants; otherwise undefined (call `load`). Never waits. */
  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    return this.closed ? undefined : this.residency.acquire(this, expert, tenantIds);
  }

  /** Makes the expert HOT for these tenants (read, verify, session), waiting for room when there is none. */
  load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    if (this.closed) return Promise.reject(new Error("expert store is closed"));
    return this.residency.load(this, expert, tenantIds);
  }

  /** `load` and a use taken as the load ends (no other load can evict it in between). */
  get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    if (this.closed) return Promise.reject(new Error("expert store is closed"));
    return this.residency.get(this, expert, tenantIds);
  }

  /** Why these experts can never be HOT at once for the tenant (a quota or capacity below their bytes). */
  neverHotTogether(experts: readonly ExpertRef[], tenantId: string): NeverHotTogether | undefined {
    return this.residency.neverHotTogether(experts, tenantId);
  }

  /** Where the expert is in this worker now. */
  levelOf(expert: ExpertRef): "HOT" | "WARM" | "COLD" {
    return this.residency.levelOf(this, expert);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.residency.dropView(this);
  }
}
