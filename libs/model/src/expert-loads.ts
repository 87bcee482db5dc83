import type { ExpertRef, ExpertStore } from "./expert-store";
import type { LoadTimeEstimates } from "./timing-defence";

/**
 * The expert loads decode steps start, off the step. Each call passes its tenants to the
 * store (which accounts loads per tenant and joins a load already running); the first call
 * for an expert with none of ours in flight is timed from its start to its end into the
 * tier's load-time estimate. A call that joins one in flight is not timed: it would measure
 * only the rest of that load. (A load the store runs for someone else, e.g. a prefetch, can
 * still be joined unseen and measured short; the estimate takes the slowest recent load, so
 * a short one does not lower it.)
 */
export class ExpertLoads {
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly store: ExpertStore,
    private readonly estimates: LoadTimeEstimates,
  ) {}

  /** Makes the expert HOT; rejects with an error naming it when the store cannot. */
  start(ref: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    const startedMs = performance.now();
    const load = this.store.load(ref, tenantIds).catch((e: unknown) => {
      throw new Error(`expert ${ref.key} could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
    if (!this.inFlight.has(ref.key)) {
      this.inFlight.add(ref.key);
      load
        .then(
          () => this.estimates.record(ref.tierId, performance.now() - startedMs),
          () => undefined,
        )
        .finally(() => this.inFlight.delete(ref.key));
    }
    return load;
  }
}
