/**
 * PREFETCH_BYTES per sequence (the worker's completion id), by model tier, until its usage
 * is recorded. The worker's usage port reads a completion's bytes with its other usage
 * events, which are idempotent per (completion, meter, dimension): a retried or replayed
 * finalisation writes the same events once. Only the completion's own tenant reads them.
 * Completions whose usage is never recorded here (their job moved to another worker) are
 * forgotten oldest first beyond `maxSequences`.
 */
export class PrefetchUsageBook {
  private readonly bySequence = new Map<string, { tenantId: string; byTier: Map<string, number> }>();

  constructor(private readonly maxSequences = 100_000) {}

  add(tenantId: string, sequenceId: string, tierId: string, bytes: number): void {
    let u = this.bySequence.get(sequenceId);
    if (!u || u.tenantId !== tenantId) {
      u = { tenantId, byTier: new Map() };
      this.bySequence.set(sequenceId, u);
      if (this.bySequence.size > this.maxSequences) this.bySequence.delete(this.bySequence.keys().next().value!);
    }
    u.byTier.set(tierId, (u.byTier.get(tierId) ?? 0) + bytes);
  }

  /** The completion's prefetched bytes by tier id ({} for another tenant's or an unknown one). */
  bytesOf(tenantId: string, completionId: string): Record<string, number> {
    const u = this.bySequence.get(completionId);
    return u && u.tenantId === tenantId ? Object.fromEntries([...u.byTier].sort()) : {};
  }

  /** Its usage is recorded: forgotten. */
  settle(tenantId: string, completionId: string): void {
    if (this.bySequence.get(completionId)?.tenantId === tenantId) this.bySequence.delete(completionId);
  }
}
