import type { ExpertLease, ExpertRef } from "./expert-store";
import type { ExpertStageSequence, ExpertUse } from "./expert-stage.types";
import type { ModelCore } from "./model-core";
import type { PassRows } from "./pass-rows";

/**
 * Steps 4 and 5 of the expert stage (pass-experts.ts): the timing pads a lease's first uses
 * owe, and the parking of the sequences whose experts are not HOT (their loads started off
 * the step), of those whose experts can never be HOT together (refused with the limit that
 * says so), and, with the timing defence on, of first uses (as if loading).
 */

/** Step 4: the tiers each sequence owes a pad for, from its tenant's first uses; counts them per tenant. */
export function notePads(
  seqs: ExpertStageSequence[],
  rows: PassRows,
  uses: Map<string, ExpertUse>,
  leases: Map<string, ExpertLease>,
  firstUses: Map<string, number>,
): void {
  for (const [key, lease] of leases) {
    const first = lease.firstUseBy;
    if (!first || first.size === 0) continue;
    const use = uses.get(key)!;
    for (const t of first) firstUses.set(t, (firstUses.get(t) ?? 0) + 1);
    for (const r of use.rows) {
      const s = seqs[rows.seq[r]];
      if (first.has(s.tenantId)) s.padTiers.add(use.ref.tierId);
    }
  }
}

/** Step 5: parks the sequences with rows on an expert that was not leased; returns their indices. */
export function parkCold(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  uses: Map<string, ExpertUse>,
  leases: Map<string, ExpertLease>,
  layer: number,
): Set<number> {
  const waits = new Map<number, Set<Promise<void>>>();
  const refused = refuseNeverTogether(core, seqs, rows, uses, leases, layer);
  for (const [key, use] of uses) {
    const lease = leases.get(key);
    if (lease) {
      parkFirstUses(core, seqs, rows, key, use, lease, waits, refused);
      continue;
    }
    const waiting = use.rows.filter((r) => !refused.has(rows.seq[r]));
    if (waiting.length === 0) continue;
    const tenants = new Set(waiting.map((r) => seqs[rows.seq[r]].tenantId));
    const load = core.loads.start(use.ref, tenants);
    for (const r of waiting) {
      const si = rows.seq[r];
      const list = waits.get(si) ?? new Set<Promise<void>>();
      waits.set(si, list.add(load));
      seqs[si].padTiers.add(use.ref.tierId);
      seqs[si].waited.add(key);
    }
  }
  for (const [si, loads] of waits) {
    const parked = Promise.all(loads).then(() => undefined);
    // Handled at once: a load may fail before the batch, after the pass, looks at it.
    parked.catch(() => undefined);
    seqs[si].parked = parked;
  }
  for (const [si, error] of refused) {
    const parked = Promise.reject(error);
    parked.catch(() => undefined);
    seqs[si].parked = parked;
  }
  return new Set([...waits.keys(), ...refused.keys()]);
}

/**
 * The sequences that would park here (an expert of theirs not leased) whose experts of this
 * layer can never be HOT at once for their tenant (ExpertStore.neverHotTogether): each with
 * the error that ends it.
 */
function refuseNeverTogether(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  uses: Map<string, ExpertUse>,
  leases: Map<string, ExpertLease>,
  layer: number,
): Map<number, Error> {
  const refused = new Map<number, Error>();
  const check = core.store.neverHotTogether?.bind(core.store);
  if (!check) return refused;
  // Runs at every layer of every step, and almost always every expert is leased: find the
  // cold sequences first, and gather experts only for them.
  const cold = new Set<number>();
  for (const [key, use] of uses) if (!leases.has(key)) for (const r of use.rows) cold.add(rows.seq[r]);
  if (cold.size === 0) return refused;
  const needs = new Map<number, ExpertRef[]>();
  for (const use of uses.values()) {
    for (const r of use.rows) {
      const si = rows.seq[r];
      if (!cold.has(si)) continue;
      const list = needs.get(si) ?? [];
      if (!list.includes(use.ref)) list.push(use.ref);
      needs.set(si, list);
    }
  }
  for (const si of cold) {
    const experts = needs.get(si)!;
    const why = check(experts, seqs[si].tenantId);
    if (!why) continue;
    const bytes = experts.reduce((sum, e) => sum + e.file.bytes, 0);
    refused.set(
      si,
      new Error(
        `${why.code}: layer ${layer} of its token needs ${experts.length} experts (${bytes} bytes) HOT at once, over ${why.limit}`,
      ),
    );
  }
  return refused;
}

/**
 * The timing defence's first uses (timing-defence.ts, rule 2): a sequence whose tenant uses
 * a HOT expert for the first time since it became resident is parked as if the expert were
 * cold, for the tier's load estimate (≥ a real load), and retries like a parked one. A cold
 * path parks once per layer that needs a load, each park costing the load and a wait for
 * the next step; a padded path now has the same shape, layer by layer, instead of one pad
 * for the whole token (the sidechannel benchmark told the two apart with AUC 1.0 so).
 */
function parkFirstUses(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  key: string,
  use: ExpertUse,
  lease: ExpertLease,
  waits: Map<number, Set<Promise<void>>>,
  refused: ReadonlyMap<number, Error>,
): void {
  const first = lease.firstUseBy;
  if (!core.defence.enabled || !first || first.size === 0) return;
  let wait: Promise<void> | undefined;
  for (const r of use.rows) {
    const si = rows.seq[r];
    // a load it waited for counts as its wait (its first use after it is not parked again)
    if (!first.has(seqs[si].tenantId) || seqs[si].waited.has(key) || refused.has(si)) continue;
    seqs[si].waited.add(key);
    wait ??= core.defence.asIfLoading(use.ref.tierId);
    const list = waits.get(si) ?? new Set<Promise<void>>();
    waits.set(si, list.add(wait));
  }
}
