import type { ExpertRef } from "./expert-store";
import type { ModelCore } from "./model-core";
import type { PassRows } from "./pass-rows";
import { runRows } from "./pass-rows";

/**
 * Prefetch prediction: once a layer's experts are chosen for the rows of a pass and a
 * sequence parks at that layer, the NEXT layer's router is applied to the same hidden state
 * (the layer's normed input, `h2`) and HSER picks each of its rows' experts with its own
 * TierSet and seed; its predicted experts, most wanted first, go to the store
 * (`ExpertStore.prefetch`). Only parked sequences: their retry needs the next layer after
 * this one's loads, time a prefetch can use; a sequence that goes on reaches the next layer
 * within the same step, sooner than any load, and a step whose experts are all HOT (the
 * steady state) computes no prediction at all.
 *   1. nothing runs when the store has no `prefetch`, the layer is the last one, or no
 *      parked sequence of the pass asks for prefetching (`prefetch` unset: tools, plain
 *      batches);
 *   2. the router call is started and NOT awaited: the decode step goes on at once (the
 *      router is one small matmul; onnxruntime-node runs it on the JS thread, deferred by
 *      setImmediate, so it runs between the step's own calls);
 *   3. when it answers, per sequence: HSER over each of its rows (the tiers outside its
 *      TierSet are masked, so no other tier can be predicted), gates summed per expert;
 *      experts sorted by summed gate (largest first, ties by key) → one request.
 * Only residency changes: the prediction never feeds back into the pass, so tokens are the
 * same with prefetch on or off. A failed prediction is dropped silently (it is a hint).
 */

/** What the hook reads of a pass's sequence. */
export interface PrefetchingSequence {
  tenantId: string;
  seed: bigint;
  activeTiers: boolean[];
  /** set by the batch when its store prefetches: the sequence's id and whether it still runs */
  prefetch?: { id: string; live(): boolean };
}

export function predictNextLayer(
  core: ModelCore,
  seqs: readonly PrefetchingSequence[],
  rows: PassRows,
  h2: Float32Array,
  layer: number,
  /** indices (into `seqs`) of the sequences parked at this layer */
  parked: ReadonlySet<number>,
): void {
  const store = core.store;
  const next = layer + 1;
  if (!store.prefetch || next >= core.arch.layers || rows.n === 0) return;
  if (![...parked].some((si) => seqs[si].prefetch?.live())) return;
  const rowSeq = rows.seq.slice();
  const n = rows.n;
  runRows(core.layers[next].router, h2, n, core.arch.dModel)
    .then((routed) => {
      if (routed.width < core.router.requiredWidth) return;
      const gates = new Map<number, Map<string, { ref: ExpertRef; gate: number }>>();
      for (let r = 0; r < n; r++) {
        const si = rowSeq[r];
        const s = seqs[si];
        if (!s.prefetch || !parked.has(si)) continue;
        const sel = core.router.route(routed.data, r * routed.width, s.activeTiers, s.seed, next);
        const mine = gates.get(si) ?? new Map<string, { ref: ExpertRef; gate: number }>();
        gates.set(si, mine);
        for (const p of sel) {
          const ref = core.experts[p.tier][next][p.group * core.tiers[p.tier].expertsPerGroup + p.expert];
          const g = mine.get(ref.key);
          if (g) g.gate += p.gate;
          else mine.set(ref.key, { ref, gate: p.gate });
        }
      }
      for (const [si, mine] of gates) {
        const s = seqs[si];
        const handle = s.prefetch!;
        if (!handle.live()) continue;
        const experts = [...mine.values()]
          .sort((a, b) => b.gate - a.gate || (a.ref.key < b.ref.key ? -1 : 1))
          .map((g) => g.ref);
        const tierIds = new Set(core.tiers.filter((_, i) => s.activeTiers[i]).map((t) => t.id));
        store.prefetch!({ tenantId: s.tenantId, sequenceId: handle.id, tierIds, experts, live: handle.live });
      }
    })
    .catch(() => undefined);
}
