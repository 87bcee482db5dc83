import { notePads, parkCold } from "./expert-parking";
import type { ExpertStageOptions, ExpertStageSequence, ExpertUse } from "./expert-stage.types";
import type { ExpertLease, ExpertRef } from "./expert-store";
import type { RoutedExpert } from "./hser-router";
import type { ModelCore } from "./model-core";
import { runRows, timed, type PassRows, type PassTimings } from "./pass-rows";
import { predictNextLayer } from "./prefetch-hook";
import { gatherRows, rmsNormRows } from "./row-math";

/**
 * One layer's mixture of experts over the rows still in a forward pass:
 *   1. norm (TS) → router (ONNX) → HSER (TS) for every row;
 *   2. group the rows by expert, with the tenants whose rows use it;
 *   3. lease each expert from the store: `acquire` gives it only when it is HOT and never
 *      waits (with `park` off, a cold expert is loaded in the pass instead: `get`);
 *   4. a lease naming tenants in `firstUseBy`: each of their sequences with rows on it owes a
 *      timing pad for the expert's tier (timing-defence.ts), and the tenant's first use is
 *      counted;
 *   5. an expert not given (not HOT): every sequence with a row on it is parked — its load is
 *      started off the step (ExpertLoads), `parked` settles when all the loads it waits for
 *      have, it owes a pad for the tier — and its rows leave the pass with its resume point
 *      (`parkedAt`: its rows' hidden state entering this stage; its next pass starts here);
 *      with the timing defence on, a sequence with a first use (step 4) is parked the same
 *      way, for the tier's load estimate instead of a load (parkFirstUses); a parked
 *      sequence's next-layer experts are predicted off the step, for prefetch
 *      (prefetch-hook.ts). Its retry needs this layer's experts HOT at once (not those of
 *      the layers before): when the store says they never can be for its tenant (a quota
 *      or capacity below their bytes, `ExpertStore.neverHotTogether`) `parked` rejects
 *      with QUOTA_EXCEEDED (or CAPACITY_TOO_SMALL) naming the limit and no load starts for
 *      it, instead of loads that would evict each other forever;
 *   5b. the sequences still in the pass note the experts and calls their rows used (a
 *      parked one notes them in the pass that resumes it: each layer is noted once);
 *   6. each leased expert runs ONCE over its remaining rows, whatever sequence they belong
 *      to; runs are issued together, but they do not overlap: onnxruntime-node (1.30) defers
 *      each run with setImmediate and then runs it synchronously on the JS thread, so a
 *      layer's experts run back to back in one turn of the event loop; every lease is
 *      released, also when a run fails;
 *   7. each row adds the gate-weighted sum of its experts, in routing order (TS).
 */

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
    const parked = parkCold(core, seqs, rows, uses, leases, layer);
    predictNextLayer(core, seqs, rows, h2, layer, parked);
    for (const si of parked) seqs[si].parkedAt = { layer, prefillRows: rows.prefillRows[si], ...rows.rowsOf(si) };
    noteExperts(core, seqs, rows, picks, layer, parked);
    if (parked.size > 0) {
      // The parked sequences' rows leave the pass with their resume points. Their K/V rows
      // at positions ≥ their processed count, written in layers ≤ this one, stay: the
      // batch does not advance a parked sequence (decode-batch.ts) and its next pass joins
      // at this layer's expert stage (forward-pass.ts), so the layers above are written by
      // that pass, all of a sequence's K/V rows of a layer before any of its rows attends,
      // while a row at position p reads only positions ≤ p (KvCache.attend). A sequence
      // whose KV is dropped while parked (its tenant's KV quota) loses its resume point and
      // starts over from position 0. ONNX prompt attention reads the pass's own QKV, not
      // the cache.
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

/** Step 1: each row's experts (HSER over its router row). */
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
    picks.push(core.router.route(routed.data, r * routed.width, s.activeTiers, s.seed, layer));
  }
  return picks;
}

/** Step 5b: the experts and calls of the rows that stay, noted on their sequences. */
function noteExperts(
  core: ModelCore,
  seqs: ExpertStageSequence[],
  rows: PassRows,
  picks: RoutedExpert[][],
  layer: number,
  parked: ReadonlySet<number>,
): void {
  picks.forEach((sel, r) => {
    if (parked.has(rows.seq[r])) return;
    const s = seqs[rows.seq[r]];
    for (const p of sel) {
      const ref = refOf(core, layer, p);
      s.experts[layer].add(ref.name);
      s.expertCalls.set(ref.tierId, (s.expertCalls.get(ref.tierId) ?? 0) + 1);
    }
  });
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
