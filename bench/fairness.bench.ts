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
 */
import { ensureModel } from "@lite/model";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, jain, sleep, startPhase, type LiveServices } from "./lib/live-stack";
import { keepBacklogged } from "./lib/load";

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

export const bench: Benchmark = {
  name: "fairness",
  description:
    "Token shares of three backlogged tenants (weights 1:2:4) through the whole stack vs their weights, fair scheduling and a single FIFO queue baseline.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.FAIRNESS_SECONDS ?? 60);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    try {
      const fair = await runMode(ctx, live, "fair", seconds);
      const fifo = await runMode(ctx, live, "fifo", seconds);
      const table = (f: ModeFigures) =>
        f.tenants
          .map(
            (t) =>
              `| ${f.mode} | ${t.weight} | ${t.tokens} | ${pct(t.share)} | ${pct(t.weightShare)} | ${pct(t.relativeError)} |`,
          )
          .join("\n");
      const summary = [
        `### fairness`,
        ``,
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
      ].join("\n");
      return {
        summary,
        seconds,
        weights: WEIGHTS,
        batch: BATCH,
        model: MODEL,
        fair,
        fifo,
        targetMet: fair.maxRelativeShareError <= 0.05,
      };
    } finally {
      await live.stop();
    }
  },
};
