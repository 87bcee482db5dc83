/** Sequences a tenant holds in this worker, and its scheduling weight. */
export interface HeldByTenant {
  n: number;
  weight: number;
}

/**
 * Tenants at their hold cap: a tenant may hold its weighted share of the batch plus one,
 * ceil(batchSize × weight ÷ Σ weights of the tenants held) + 1, at most batchSize —
 * enough for its share of every step's slots with one spare, so a tenant that fell
 * behind (a sequence of it just finished) can catch up in the following steps. A tenant
 * not held yet (weight unknown until its row is read) may take
 * ceil(batchSize ÷ (tenants held + 1)) in one fill.
 *
 * @param held sequences held per tenant before this fill
 * @param taken jobs already taken per tenant in this fill (not started yet)
 */
export function tenantsAtHoldCap(
  batchSize: number,
  held: ReadonlyMap<string, HeldByTenant>,
  taken: ReadonlyMap<string, number>,
): Set<string> {
  const b = batchSize;
  let total = 0;
  for (const h of held.values()) total += h.weight;
  const out = new Set<string>();
  for (const [t, h] of held) {
    const cap = Math.min(b, Math.ceil((b * h.weight) / total) + 1);
    if (h.n + (taken.get(t) ?? 0) >= cap) out.add(t);
  }
  const newcomerCap = Math.max(1, Math.ceil(b / (held.size + 1)));
  for (const [t, n] of taken) if (!held.has(t) && n >= newcomerCap) out.add(t);
  return out;
}

/** Sequences held per tenant, from the held sequences' tenants and weights. */
export function heldByTenant(held: Iterable<{ tenantId: string; tenantWeight: number }>): Map<string, HeldByTenant> {
  const out = new Map<string, HeldByTenant>();
  for (const s of held) {
    const h = out.get(s.tenantId);
    if (h) h.n++;
    else out.set(s.tenantId, { n: 1, weight: s.tenantWeight });
  }
  return out;
}
