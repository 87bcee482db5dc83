import type { ExpertLease, ExpertRef } from "./expert-store";
import type { RoutedExpert } from "./hser-router";
import type { ModelCore } from "./model-core";
import { runRows, timed, type PassRows, type PassTimings } from "./pass-rows";
import { predictNextLayer, type PrefetchingSequence } from "./prefetch-hook";
import { gatherRows, rmsNormRows } from "./row-math";

/**
 * One layer's mixture of experts over the rows still in a forward pass:
 *   1. norm (TS) → router (ONNX) → HSER (TS) for every row, noting per sequence the experts
 *      and calls it used;
 *   2. group the rows by expert, with the tenants whose rows use it;
 *   3. lease each expert from the store: `acquire` gives it only when it is HOT and never
 *      waits (with `park` off, a cold expert is loaded in the pass instead: `get`);
 *   4. a lease naming tenants in `firstUseBy`: each of their sequences with rows on it owes a
 *      timing pad for the expert's tier (timing-defence.ts), and the tenant's first use is
 *      counted;
 *   5. an expert not given (not HOT): every sequence with a row on it is parked — its load is
 *      started off the step (ExpertLoads), `parked` settles when all the loads it waits for
 *      have, it owes a pad for the tier — and its rows leave the pass; with the timing
 *      defence on, a sequence with a first use (step 4) is parked the same way, for the
 *      tier's load estimate instead of a load (parkFirstUses); a parked sequence's next-layer
 *      experts are predicted off the step, for prefetch (prefetch-hook.ts);
 *   6. each leased expert runs ONCE over its remaining rows, whatever sequence they belong
 *      to; runs are issued together (onnxruntime-node runs them off the JS thread, so on two
 *      cores two experts overlap); every lease is released, also when a run fails;
 *   7. each row adds the gate-weighted sum of its experts, in routing order (TS).
 */

/** What the expert stage reads and fills of a pass's sequence (and, for prefetch, `prefetch`). */
export interface ExpertStageSequence extends PrefetchingSequence {
  /** filled: per layer, the distinct experts its rows used */
  experts: Set<string>[];
  /** filled: token × expert evaluations by tier id */
  expertCalls: Map<string, number>;
  /**
   * Set when the sequence was parked: an expert its rows need was not HOT. It settles once
   * every expert it waits for is loaded, and rejects, naming the expert, when one cannot be.
   */
  parked?: Promise<void>;
  /** filled: tiers of the experts this sequence owes a timing pad for (first uses, parks) */
  padTiers: Set<string>;
  /**
   * kept across the parks of one token: experts it already waited for, loaded or as if
   * (parkFirstUses); a first use of one of them does not park it again
   */
  waited: Set<string>;
}

export interface ExpertStageOptions {
  /** park the sequences that need an expert that is not HOT (the worker's shared step); off: load it in the pass */
  park: boolean;
}

interface ExpertUse {
  ref: ExpertRef;
  /** rows routed to it (indices into the stage's rows) */
  rows: number[];
  tenants: Set<string>;
}

/** Runs the layer's experts and returns the rows that stay in the pass (parked sequences' rows leave). */
export async function expertStage(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  layer: number,
  timings: PassTimings,
  opts: ExpertStageOptions,
  firstUses: Map<string, number>,
): Promise<PassRows> {
  const d = core.arch.dModel;
  let h2 = rmsNormRows(rows.x, rows.n, d, core.arch.normEpsilon);
  let picks = await routeRows(core, seqs, rows, h2, layer, timings);
  const uses = groupByExpert(core, seqs, rows, picks, layer);
  // Timed as ONNX: with `park` off a cold expert's load (its session creation) happens here.
  const leases = await timed(timings, () => leaseExperts(core, uses, opts.park));
  try {
    notePads(seqs, rows, uses, leases, firstUses);
    const parked = parkCold(core, seqs, rows, uses, leases);
    predictNextLayer(core, seqs, rows, h2, layer, parked);
    if (parked.size > 0) {
      // The parked sequences' rows leave the pass. Their K/V rows at positions ≥ their
      // processed count, already written in layers ≤ this one, are garbage that nothing reads
      // before the retry overwrites them: the batch does not advance a parked sequence
      // (decode-batch.ts), so its retry feeds the same tokens at the same positions, and in
      // every layer a pass writes all of a sequence's K/V rows before any of its rows attends
      // (forward-pass.ts), while a row at position p reads only positions ≤ p
      // (KvCache.attend): those below the processed count, which earlier steps wrote and
      // this pass leaves alone, and those the retry has just rewritten in that layer. ONNX
      // prompt attention reads the pass's own QKV, not the cache. KvCache.grow already
      // counted the positions; the retry grows to the same length.
      const keep = rows.keeping(new Set(parked));
      const index = new Map(keep.map((r, i) => [r, i]));
      for (const use of uses.values()) use.rows = use.rows.filter((r) => index.has(r)).map((r) => index.get(r)!);
      h2 = gatherRows(h2, keep, d);
      picks = keep.map((r) => picks[r]);
      rows = rows.select(keep);
    }
    const outputs = await runExperts(uses, leases, h2, d, timings);
    combine(core, rows, picks, outputs, layer);
    return rows;
  } finally {
    for (const lease of leases.values()) lease.release();
  }
}

function refOf(core: ModelCore, layer: number, p: RoutedExpert): ExpertRef {
  return core.experts[p.tier][layer][p.group * core.tiers[p.tier].expertsPerGroup + p.expert];
}

/** Step 1: each row's experts (HSER over its router row), noted on its sequence. */
async function routeRows(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  h2: Float32Array,
  layer: number,
  timings: PassTimings,
): Promise<RoutedExpert[][]> {
  const d = core.arch.dModel;
  const routed = await timed(timings, () => runRows(core.layers[layer].router, h2, rows.n, d));
  if (routed.width < core.router.requiredWidth) {
    throw new Error(
      `router of layer ${layer} has ${routed.width} outputs, the manifest needs ${core.router.requiredWidth}`,
    );
  }
  const picks: RoutedExpert[][] = [];
  for (let r = 0; r < rows.n; r++) {
    const s = seqs[rows.seq[r]];
    const sel = core.router.route(routed.data, r * routed.width, s.activeTiers, s.seed, layer);
    picks.push(sel);
    for (const p of sel) {
      const ref = refOf(core, layer, p);
      s.experts[layer].add(`${ref.tierId}/g${ref.group}/e${ref.expert}`);
      s.expertCalls.set(ref.tierId, (s.expertCalls.get(ref.tierId) ?? 0) + 1);
    }
  }
  return picks;
}

/** Step 2: the rows and tenants of each expert, in the order rows first use them. */
function groupByExpert(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  picks: RoutedExpert[][],
  layer: number,
): Map<string, ExpertUse> {
  const uses = new Map<string, ExpertUse>();
  picks.forEach((sel, r) => {
    for (const p of sel) {
      const ref = refOf(core, layer, p);
      let use = uses.get(ref.key);
      if (!use) uses.set(ref.key, (use = { ref, rows: [], tenants: new Set() }));
      use.rows.push(r);
      use.tenants.add(seqs[rows.seq[r]].tenantId);
    }
  });
  return uses;
}

/**
 * Step 3: a lease for each expert that is HOT. With `park` off, one that is not is loaded
 * here (the step waits). On a failed load, the leases already held are released.
 */
async function leaseExperts(
  core: ModelCore,
  uses: Map<string, ExpertUse>,
  park: boolean,
): Promise<Map<string, ExpertLease>> {
  const leases = new Map<string, ExpertLease>();
  const waits: Promise<void>[] = [];
  let failure: { reason: unknown } | undefined;
  try {
    for (const [key, use] of uses) {
      const lease = core.store.acquire(use.ref, use.tenants);
      if (lease) leases.set(key, lease);
      else if (!park) waits.push(core.store.get(use.ref, use.tenants).then((l) => void leases.set(key, l)));
    }
  } catch (e) {
    failure = { reason: e };
  }
  // Every load settles first, so a lease that comes after a failure is released too.
  const settled = await Promise.allSettled(waits);
  failure ??= settled.find((w): w is PromiseRejectedResult => w.status === "rejected");
  if (failure) {
    for (const lease of leases.values()) lease.release();
    throw failure.reason;
  }
  return leases;
}

/** Step 4: the tiers each sequence owes a pad for, from its tenant's first uses; counts them per tenant. */
function notePads(
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
function parkCold(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  uses: Map<string, ExpertUse>,
  leases: Map<string, ExpertLease>,
): Set<number> {
  const waits = new Map<number, Set<Promise<void>>>();
  for (const [key, use] of uses) {
    const lease = leases.get(key);
    if (lease) {
      parkFirstUses(core, seqs, rows, key, use, lease, waits);
      continue;
    }
    const load = core.loads.start(use.ref, use.tenants);
    for (const r of use.rows) {
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
  return new Set(waits.keys());
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
): void {
  const first = lease.firstUseBy;
  if (!core.defence.enabled || !first || first.size === 0) return;
  let wait: Promise<void> | undefined;
  for (const r of use.rows) {
    const si = rows.seq[r];
    // a load it waited for counts as its wait (its first use after it is not parked again)
    if (!first.has(seqs[si].tenantId) || seqs[si].waited.has(key)) continue;
    seqs[si].waited.add(key);
    wait ??= core.defence.asIfLoading(use.ref.tierId);
    const list = waits.get(si) ?? new Set<Promise<void>>();
    waits.set(si, list.add(wait));
  }
}

/** Step 6: each leased expert once over its rows; every run settles before an error is thrown. */
async function runExperts(
  uses: Map<string, ExpertUse>,
  leases: Map<string, ExpertLease>,
  h2: Float32Array,
  d: number,
  timings: PassTimings,
): Promise<Map<string, { data: Float32Array; index: Map<number, number> }>> {
  const outputs = new Map<string, { data: Float32Array; index: Map<number, number> }>();
  const runs = [...uses]
    .filter(([key, use]) => leases.has(key) && use.rows.length > 0)
    .map(async ([key, use]) => {
      const out = await runRows(leases.get(key)!.session, gatherRows(h2, use.rows, d), use.rows.length, d);
      outputs.set(key, { data: out.data, index: new Map(use.rows.map((r, i) => [r, i])) });
    });
  const settled = await timed(timings, () => Promise.allSettled(runs));
  timings.expertRuns += runs.length;
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return outputs;
}

/** Step 7: x[row] += Σ gate × expert output, in routing order (a fixed order per row). */
function combine(
  core: ModelCore,
  rows: PassRows,
  picks: RoutedExpert[][],
  outputs: Map<string, { data: Float32Array; index: Map<number, number> }>,
  layer: number,
): void {
  const d = core.arch.dModel;
  const acc = new Float64Array(d);
  for (let r = 0; r < rows.n; r++) {
    acc.fill(0);
    for (const p of picks[r]) {
      const out = outputs.get(refOf(core, layer, p).key)!;
      const base = out.index.get(r)! * d;
      for (let i = 0; i < d; i++) acc[i] += p.gate * out.data[base + i];
    }
    for (let i = 0; i < d; i++) rows.x[r * d + i] += acc[i];
  }
}
