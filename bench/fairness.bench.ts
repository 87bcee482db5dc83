/**
 * fairness: three backlogged tenants of weights 1, 2 and 4 share one worker (batch 16,
 * mode FAST, the `default` model) for FAIRNESS_SECONDS (default 60); their shares of the
 * output tokens are compared with their weight shares (1/7, 2/7, 4/7). The same load then
 * runs through a single FIFO queue (SCHEDULER_MODE=fifo: one queue for every tenant, no
 * token-level fairness in the worker) as the baseline.
 *
 * Method: each tenant is kept backlogged (at least QUEUED_PER_TENANT completions of 128
 * tokens waiting, topped up every 250 ms through the GraphQL API); after a warm-up of
 * WARMUP_SECONDS, the worker's per-tenant token counter (lite_tokens_generated_total) is
 * read at the start and end of the window. Reported per mode: each tenant's share and its
 * relative error |share − weightShare| ÷ weightShare, the maximum of those, and Jain's
 * index over share ÷ weightShare (1 = shares exactly follow weights).
 *
 * Client side (bench/lib/client-fairness.ts), fair scheduling on 1 worker and on 3
 * (FAIRNESS_CLIENT_WORKERS, default "1,3"): the three tenants create FAIRNESS_CLIENT_PER_WEIGHT
 * (default 30) × weight × workers completions all at once, of mixed lengths (16..512 tokens) and modes
 * (FAST, BALANCED, DEEP), each streamed over graphql-ws; tokens count, in cost-weighted
 * units, when their subscriber receives them. From the start until FAIRNESS_CLIENT_SECONDS
 * (default 30) after the first token (less if a tenant has nothing left waiting first):
 * each tenant's share vs its weight share, and the largest service lag (weighted fair
 * share of the service received so far − the tenant's own) vs 2 × the costliest request
 * (maxTokens × costWeight), the bound the VTC paper proves for its scheduler.
 * Before the start the same tenants warm up (at most FAIRNESS_CLIENT_WARMUP_ROUNDS, default
 * 12, rounds of short DEEP completions, until one has the timing defence pad no first use):
 * a cold start measures the timing defence's first-use pads (each tenant's first use of
 * each expert on each worker waits as long as a load), not the scheduler — on three workers
 * they park most sequences for the whole window. The cold start is run too, on
 * FAIRNESS_CLIENT_COLD_WORKERS (default "3"; "" for none), and reported beside, outside the
 * target. FAIRNESS_SECTIONS ("worker,client" by default) picks the halves to run; e.g.
 * FAIRNESS_SECTIONS=client FAIRNESS_CLIENT_WORKERS=3 FAIRNESS_CLIENT_COLD_WORKERS= runs the
 * warm three-worker phase alone.
 */
import { ensureModel } from "@lite/model";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, jain, sleep, startPhase, type LiveServices } from "./lib/live-stack";
import { keepBacklogged } from "./lib/load";
import { CLIENT_LENGTHS, CLIENT_MODES, runClientPhase, type ClientFairnessFigures } from "./lib/client-fairness";

const WEIGHTS = [1, 2, 4];
const MODEL = "default";
const BATCH = 16;
const QUEUED_PER_TENANT = 24;
const MAX_TOKENS = 128;
const WARMUP_SECONDS = 8;

interface ModeFigures {
  mode: "fair" | "fifo";
  windowSeconds: number;
  tokensPerSecond: number;
  tenants: Array<{ weight: number; tokens: number; share: number; weightShare: number; relativeError: number }>;
  maxRelativeShareError: number;
  jainIndex: number;
}

async function runMode(
  ctx: BenchContext,
  live: LiveServices,
  mode: "fair" | "fifo",
  seconds: number,
): Promise<ModeFigures> {
  const phase = await startPhase(ctx, live, { mode, workers: 1, batchSize: BATCH, model: MODEL });
  try {
    const tenants = await Promise.all(WEIGHTS.map((w) => phase.createTenant(`fair-w${w}`, w)));
    const loads = tenants.map((t, k) =>
      keepBacklogged(t.http, QUEUED_PER_TENANT, (i) => ({
        prompt: `Tenant of weight ${WEIGHTS[k]}, request ${i}: once upon a time`,
        maxTokens: MAX_TOKENS,
        mode: "FAST",
        seed: `${k}-${i}`,
        temperature: 0.8,
      })),
    );
    ctx.log(`fairness/${mode}: warming up ${WARMUP_SECONDS} s`);
    await sleep(WARMUP_SECONDS * 1000);
    const t0 = performance.now();
    const before = await phase.tokensByTenant();
    ctx.log(`fairness/${mode}: measuring ${seconds} s`);
    await sleep(seconds * 1000);
    const after = await phase.tokensByTenant();
    const windowSeconds = (performance.now() - t0) / 1000;
    for (const l of loads) await l.stop();
    const tokens = tenants.map((t) => (after.get(t.id) ?? 0) - (before.get(t.id) ?? 0));
    const total = tokens.reduce((a, b) => a + b, 0);
    const weightTotal = WEIGHTS.reduce((a, b) => a + b, 0);
    const rows = tokens.map((n, k) => {
      const share = n / total;
      const weightShare = WEIGHTS[k] / weightTotal;
      return {
        weight: WEIGHTS[k],
        tokens: n,
        share,
        weightShare,
        relativeError: Math.abs(share - weightShare) / weightShare,
      };
    });
    const errors = loads.reduce((a, l) => a + l.errors, 0);
    if (errors > 0) ctx.log(`fairness/${mode}: ${errors} createCompletion errors`);
    return {
      mode,
      windowSeconds,
      tokensPerSecond: total / windowSeconds,
      tenants: rows,
      maxRelativeShareError: Math.max(...rows.map((r) => r.relativeError)),
      jainIndex: jain(rows.map((r) => r.share / r.weightShare)),
    };
  } finally {
    await phase.stop();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

interface Settings {
  seconds: number;
  sections: Set<string>;
  clientSeconds: number;
  clientPerWeight: number;
  clientWorkers: number[];
  clientWarmupRounds: number;
  clientColdWorkers: number[];
}

function settings(env: NodeJS.ProcessEnv): Settings {
  return {
    seconds: Number(env.FAIRNESS_SECONDS ?? 60),
    sections: new Set((env.FAIRNESS_SECTIONS ?? "worker,client").split(",").map((x) => x.trim())),
    clientSeconds: Number(env.FAIRNESS_CLIENT_SECONDS ?? 30),
    // 30: with warm workers one worker started all 20 of the weight-1 tenant's in 24.5 s,
    // short of the 30-s window
    clientPerWeight: Number(env.FAIRNESS_CLIENT_PER_WEIGHT ?? 30),
    clientWorkers: (env.FAIRNESS_CLIENT_WORKERS ?? "1,3").split(",").map(Number),
    clientWarmupRounds: Number(env.FAIRNESS_CLIENT_WARMUP_ROUNDS ?? 12),
    clientColdWorkers: (env.FAIRNESS_CLIENT_COLD_WORKERS ?? "3")
      .split(",")
      .filter((x) => x.trim() !== "")
      .map(Number),
  };
}

function workerSideSummary(ctx: BenchContext, seconds: number, fair: ModeFigures, fifo: ModeFigures): string[] {
  const table = (f: ModeFigures) =>
    f.tenants
      .map(
        (t) =>
          `| ${f.mode} | ${t.weight} | ${t.tokens} | ${pct(t.share)} | ${pct(t.weightShare)} | ${pct(t.relativeError)} |`,
      )
      .join("\n");
  return [
    `Three tenants of weights 1:2:4 kept backlogged (≥ ${QUEUED_PER_TENANT} queued completions of ${MAX_TOKENS} tokens each) on one worker, batch ${BATCH}, mode FAST, \`${MODEL}\` model, ${ctx.cores} cores; ${seconds} s window after ${WARMUP_SECONDS} s warm-up, tokens counted by the worker per tenant.`,
    ``,
    `| scheduling | weight | tokens | share | weight share | relative error |`,
    `| --- | --- | --- | --- | --- | --- |`,
    table(fair),
    table(fifo),
    ``,
    `| scheduling | max relative share error | Jain's index (share ÷ weight share) | tokens/s |`,
    `| --- | --- | --- | --- |`,
    `| fair | ${pct(fair.maxRelativeShareError)} | ${fair.jainIndex.toFixed(4)} | ${fair.tokensPerSecond.toFixed(0)} |`,
    `| single FIFO queue | ${pct(fifo.maxRelativeShareError)} | ${fifo.jainIndex.toFixed(4)} | ${fifo.tokensPerSecond.toFixed(0)} |`,
    ``,
    `Target: every share within ±5% of its weight share under fair scheduling: ${fair.maxRelativeShareError <= 0.05 ? "met" : "NOT met"}.`,
  ];
}

const clientMet = (c: ClientFairnessFigures) => c.maxRelativeShareError <= 0.05 && c.lagInLargestRequests <= 2;
/** the phases held to the target: warm starts (a cold start's figures are reported, not judged) */
const judged = (figures: ClientFairnessFigures[]) => figures.filter((c) => !c.cold);
const workersLabel = (c: ClientFairnessFigures) => `${c.workers}${c.cold ? " cold" : ""}`;

function clientSideSummary(ctx: BenchContext, s: Settings, figures: ClientFairnessFigures[]): string[] {
  const rows = figures.flatMap((c) =>
    c.tenants.map(
      (t, k) =>
        `| ${workersLabel(c)} | ${t.weight} | ${t.tokens} | ${c.generatedTokens[k]} | ${t.costWeightedTokens.toFixed(0)} | ${pct(t.share)} | ${pct(t.weightShare)} | ${pct(t.relativeError)} |`,
    ),
  );
  const totals = figures.map(
    (c) =>
      `| ${workersLabel(c)} | ${c.serviceSeconds.toFixed(1)} s (${c.windowEnd === "time" ? "time limit" : "a tenant's last completion started"}) | ${pct(c.maxRelativeShareError)} | ${c.maxLag.lag.toFixed(0)} (weight ${WEIGHTS[c.maxLag.tenant] ?? "-"}, at ${(c.maxLag.atMs / 1000).toFixed(1)} s) | ${c.largestRequestCost.toFixed(0)} | ${c.lagInLargestRequests.toFixed(2)} | ${(c.firstTokenMs / 1000).toFixed(1)} s (creates done ${(c.createsDoneMs / 1000).toFixed(1)} s) | ${c.tokensPerSecond.toFixed(0)} / ${c.costWeightedTokensPerSecond.toFixed(0)} | ${c.warmupRounds} / ${c.warmupPaddedFirstUses} / ${c.windowPaddedFirstUses} | ${c.createErrors} / ${c.streamErrors} | ${c.cold ? (clientMet(c) ? "(met)" : "(not met)") : clientMet(c) ? "met" : "NOT met"} |`,
  );
  return [
    `#### as clients receive tokens`,
    ``,
    `The same three tenants, fair scheduling, batch ${BATCH}, \`${MODEL}\` model, ${ctx.cores} cores: each creates ${s.clientPerWeight} × weight × workers completions at once (maxTokens ${CLIENT_LENGTHS.join("/")}, modes ${CLIENT_MODES.join("/")}), each streamed over graphql-ws from its first token; every token counts its completion's cost weight when its subscriber receives it. Window: from the start to ${s.clientSeconds} s after the first token, or until the first tenant has nothing left waiting (every completion of its own has streamed a token: past that it is no longer backlogged). Lag: the largest (weighted fair share of the cost-weighted tokens received so far − the tenant's own) over the window; bound: 2 × the costliest request (maxTokens × cost weight). Warm start: before it, the same tenants run rounds of ${s.clientWarmupRounds > 0 ? `short DEEP completions (2 × weight × workers each, so their virtual times advance alike) until a round has the timing defence pad no first use of an expert on any worker (at most ${s.clientWarmupRounds})` : "nothing"}; a cold start's first uses are each held back as long as a load, on every worker, and decide who is served while they last. First token: the subscriptions' first events wait for the API, busy with all the creates at once (creates done).`,
    ``,
    `| workers | weight | tokens received | tokens generated (workers, at the end) | cost-weighted received | share | weight share | relative error |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...rows,
    ``,
    `| workers | window after the first token | max relative share error | largest lag (cost-weighted tokens) | largest request | lag ÷ largest request | first token | tokens/s (raw / cost-weighted) | warm-up rounds / first uses padded in them / in the window | errors (create / stream) | target |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...totals,
    ``,
    `Target: every share within ±5% of its weight share and the largest lag ≤ 2 × the largest request, on every worker count, warm: ${judged(figures).every(clientMet) ? "met" : "NOT met"}. Cold rows (no warm-up: every tenant's first use of each expert on each worker is padded by the timing defence inside the window) are reported, not judged.`,
  ];
}

export const bench: Benchmark = {
  name: "fairness",
  description:
    "Token shares of three backlogged tenants (weights 1:2:4) through the whole stack vs their weights, fair scheduling and a single FIFO queue baseline; then the same as clients receive tokens from a simultaneous start (share error and largest service lag, 1 and 3 workers).",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const s = settings(process.env);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    try {
      const workerSide = s.sections.has("worker");
      const fair = workerSide ? await runMode(ctx, live, "fair", s.seconds) : null;
      const fifo = workerSide ? await runMode(ctx, live, "fifo", s.seconds) : null;
      const client: ClientFairnessFigures[] = [];
      if (s.sections.has("client"))
        for (const [workers, warmupRounds] of [
          ...s.clientWorkers.map((w) => [w, s.clientWarmupRounds]),
          ...s.clientColdWorkers.map((w) => [w, 0]),
        ])
          client.push(
            await runClientPhase(ctx, live, {
              weights: WEIGHTS,
              workers,
              batchSize: BATCH,
              model: MODEL,
              seconds: s.clientSeconds,
              // W workers serve W times as fast: W times the work keeps every tenant
              // backlogged for the whole window on three workers as on one.
              perWeight: s.clientPerWeight * workers,
              warmupRounds,
            }),
          );
      const summary = [
        `### fairness`,
        ``,
        ...(fair && fifo ? [...workerSideSummary(ctx, s.seconds, fair, fifo), ``] : []),
        ...(client.length > 0 ? clientSideSummary(ctx, s, client) : []),
      ].join("\n");
      return {
        summary,
        seconds: s.seconds,
        weights: WEIGHTS,
        batch: BATCH,
        model: MODEL,
        fair,
        fifo,
        client,
        clientSeconds: s.clientSeconds,
        clientPerWeight: s.clientPerWeight,
        clientWarmupRounds: s.clientWarmupRounds,
        targetMet: (fair === null || fair.maxRelativeShareError <= 0.05) && judged(client).every(clientMet),
      };
    } finally {
      await live.stop();
    }
  },
};
