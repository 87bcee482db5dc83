/**
 * coldload: does one tenant's cold expert loads delay another tenant's tokens? (issue 10:
 * loads run off the shared decode step; a sequence waiting on a load is parked, the others
 * keep decoding.)
 *
 * The victim streams FAST completions (the hot tier: its experts stay HOT), two at a time,
 * for COLDLOAD_SECONDS (default 30), and records at the client the gap between consecutive
 * token events of each completion (inter-token latency). A neighbour keeps 4 DEEP completions
 * queued (temperature 0.8: its routes wander over the warm and cold tiers' experts) in both
 * phases, each on a fresh deployment and worker:
 *  - baseline: the neighbour's memory quota is the default, and warm-up rounds run until its
 *    experts are resident (a round makes at most a few loads), so its work loads nothing;
 *  - cold: the neighbour's hotMemoryBytes / warmMemoryBytes are 96 MiB / 128 MiB (its DEEP
 *    tiers hold ≈ 218 MB), so at its quota it evicts its own entries and many experts it
 *    routes to are loaded again from their files (read, verify, session).
 * The same batch, the same neighbour work; only the loads differ. Loads are counted from the
 * worker's lite_expert_cache_loads_total for the neighbour.
 *
 * Target: victim p99 inter-token latency cold ÷ baseline ≤ 1.2.
 */
import { ensureModel } from "@lite/model";
import { parseTenantCounter } from "@lite/telemetry";
import { CREATE_COMPLETION, TEST_ADMIN_KEY, collectTokens, scrapeWorkerMetrics, wsClient } from "@lite/testing";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, percentile, sleep, startPhase, type LiveServices, type Phase } from "./lib/live-stack";
import { keepBacklogged } from "./lib/load";

const MODEL = "default";
const BATCH = 8;
const VICTIM_STREAMS = 2;
const VICTIM_TOKENS = 64;
const MiB = 1024 * 1024;
/** the neighbour's quotas in the cold phase: a few tokens' experts, far from DEEP's ≈ 218 MB */
const NEIGHBOUR_HOT = 96 * MiB;
const NEIGHBOUR_WARM = 128 * MiB;

interface PhaseFigures {
  phase: "baseline" | "cold";
  victimCompletions: number;
  gaps: number;
  itlP50Ms: number;
  itlP99Ms: number;
  itlMaxMs: number;
  victimTokensPerSecond: number;
  neighbourTokens: number;
  neighbourLoads: number;
  victimLoads: number;
}

async function loadsOf(phase: Phase, tenantId: string): Promise<number> {
  let sum = 0;
  for (const url of phase.metricsUrls) {
    const text = await scrapeWorkerMetrics(url, TEST_ADMIN_KEY);
    sum += parseTenantCounter(text, "lite_expert_cache_loads_total").get(tenantId) ?? 0;
  }
  return sum;
}

/** One victim stream after another until `until`; each token event's gap from the previous. */
async function victimStreams(phase: Phase, victim: { key: string; http: Phase["admin"] }, until: number) {
  const ws = wsClient(phase.url, victim.key);
  const gaps: number[] = [];
  let completions = 0;
  let tokens = 0;
  try {
    await Promise.all(
      Array.from({ length: VICTIM_STREAMS }, async (_, lane) => {
        for (let i = 0; performance.now() < until; i++) {
          const r = await victim.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
            input: {
              prompt: `victim ${lane}.${i}: tell me more`,
              maxTokens: VICTIM_TOKENS,
              mode: "FAST",
              seed: `${lane}.${i}`,
              temperature: 0.8,
            },
          });
          let last: number | undefined;
          await collectTokens(ws, r.createCompletion.id, 0, (e, at) => {
            if (e.done) return;
            if (last !== undefined) gaps.push(at - last);
            last = at;
            tokens++;
          });
          completions++;
        }
      }),
    );
  } finally {
    await ws.dispose();
  }
  return { gaps, completions, tokens };
}

async function runPhase(ctx: BenchContext, live: LiveServices, name: PhaseFigures["phase"], seconds: number) {
  const phase = await startPhase(ctx, live, { mode: "fair", workers: 1, batchSize: BATCH, model: MODEL });
  try {
    const victim = await phase.createTenant(`victim-${name}`, 1);
    const neighbour = await phase.createTenant(`neighbour-${name}`, 1);
    if (name === "cold") {
      await phase.admin.ok(`mutation($t: ID!, $q: QuotaInput!) { setQuota(tenantId: $t, input: $q) { id } }`, {
        t: neighbour.id,
        q: { hotMemoryBytes: String(NEIGHBOUR_HOT), warmMemoryBytes: String(NEIGHBOUR_WARM) },
      });
    }
    // Short prompts. Under 8 MiB (the first version) a 40-byte prompt's completions never
    // started: a parked prefill then retried from layer 0, so every expert its rows routed to
    // in every layer had to be HOT at once. It now resumes at its layer (libs/model
    // "Parking"): one layer's experts at a time, or QUOTA_EXCEEDED when even that cannot fit.
    const deep = (i: number) => ({
      prompt: `n${i}`,
      maxTokens: 64,
      mode: "DEEP",
      seed: `n${i}`,
      temperature: 0.8,
    });
    // warm-up: the victim's experts HOT; in the baseline the neighbour's too
    await victimStreams(phase, victim, performance.now() + 2000);
    for (let round = 0; name === "baseline" && round < 8; round++) {
      const before = await loadsOf(phase, neighbour.id);
      const ws = wsClient(phase.url, neighbour.key);
      await Promise.all(
        Array.from({ length: 8 }, async (_, k) => {
          const r = await neighbour.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
            input: deep(1000 * (round + 1) + k),
          });
          await collectTokens(ws, r.createCompletion.id, 0, () => undefined);
        }),
      );
      await ws.dispose();
      const made = (await loadsOf(phase, neighbour.id)) - before;
      ctx.log(`coldload/${name}: neighbour warm-up round ${round}: ${made} loads`);
      if (made <= 2) break;
    }

    const backlog = keepBacklogged(neighbour.http, 4, deep);
    await sleep(2000);
    const tokens0 = await phase.tokensByTenant();
    const loads0 = [await loadsOf(phase, neighbour.id), await loadsOf(phase, victim.id)];
    const started = performance.now();
    ctx.log(`coldload/${name}: victim streams for ${seconds} s`);
    const v = await victimStreams(phase, victim, started + seconds * 1000);
    const elapsed = (performance.now() - started) / 1000;
    const tokens1 = await phase.tokensByTenant();
    const loads1 = [await loadsOf(phase, neighbour.id), await loadsOf(phase, victim.id)];
    await backlog.stop();
    return {
      phase: name,
      victimCompletions: v.completions,
      gaps: v.gaps.length,
      itlP50Ms: percentile(v.gaps, 50),
      itlP99Ms: percentile(v.gaps, 99),
      itlMaxMs: Math.max(...v.gaps),
      victimTokensPerSecond: v.tokens / elapsed,
      neighbourTokens: (tokens1.get(neighbour.id) ?? 0) - (tokens0.get(neighbour.id) ?? 0),
      neighbourLoads: loads1[0] - loads0[0],
      victimLoads: loads1[1] - loads0[1],
    } satisfies PhaseFigures;
  } finally {
    await phase.stop();
  }
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

export const bench: Benchmark = {
  name: "coldload",
  description:
    "A tenant's p99 inter-token latency (all its experts hot) while another tenant's requests force cold expert loads, ÷ the same neighbour work with its experts resident.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.COLDLOAD_SECONDS ?? 30);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    let baseline: PhaseFigures, cold: PhaseFigures;
    try {
      baseline = await runPhase(ctx, live, "baseline", seconds);
      cold = await runPhase(ctx, live, "cold", seconds);
    } finally {
      await live.stop();
    }
    const ratio = cold.itlP99Ms / baseline.itlP99Ms;
    const met = ratio <= 1.2;
    const row = (p: PhaseFigures) =>
      `| ${p.phase} | ${p.victimCompletions} | ${p.gaps} | ${ms(p.itlP50Ms)} | ${ms(p.itlP99Ms)} | ${ms(p.itlMaxMs)} | ${p.victimTokensPerSecond.toFixed(0)} | ${p.neighbourTokens} | ${p.neighbourLoads} | ${p.victimLoads} |`;
    const summary = [
      `### coldload`,
      ``,
      `Victim: ${VICTIM_STREAMS} FAST completions of ${VICTIM_TOKENS} tokens streamed at a time for ${seconds} s, inter-token gaps measured at the client. Neighbour: 4 DEEP completions kept queued (temperature 0.8); baseline with its experts resident, cold with hotMemoryBytes ${NEIGHBOUR_HOT / MiB} MiB / warmMemoryBytes ${NEIGHBOUR_WARM / MiB} MiB so it reloads from files. One worker, batch ${BATCH}, \`${MODEL}\` model, timing defence on (the default), ${ctx.cores} cores; each phase on a fresh deployment.`,
      ``,
      `| phase | victim completions | gaps | ITL p50 | ITL p99 | ITL max | victim tokens/s | neighbour tokens | neighbour loads | victim loads |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      row(baseline),
      row(cold),
      ``,
      `Target (issue 10): victim p99 inter-token latency cold ÷ baseline ≤ 1.2: ${met ? "met" : "NOT met"} (${ratio.toFixed(2)}).`,
    ].join("\n");
    return { summary, seconds, model: MODEL, batch: BATCH, baseline, cold, ratio, targetMet: met };
  },
};
