/**
 * sidechannel: can a tenant tell, from its own time to first token, whether another tenant
 * made an expert hot? (issue 10: the timing defence, TIMING_DEFENCE.)
 *
 * One trial, on a freshly started worker (every expert COLD but the pinned dense blocks
 * and routers; the same start in both classes):
 *  1. a warmer tenant runs a FAST completion (the hot tier's experts and the sessions warm);
 *  2. class HOT: the victim runs the probe's own request (same prompt, DEEP, temperature 0,
 *     1 token: routing depends on the prompt, the seed only breaks exact ties), so every
 *     expert the probe will use is HOT; class COLD: the victim runs it in FAST (the warm and
 *     cold tiers' experts stay COLD);
 *  3. the attacker, a tenant new in this trial (so each use is its first), sends the probe
 *     and times createCompletion → first token event at the client.
 * Classes alternate in a shuffled order. The attacker's best classifier is a threshold on
 * its TTFT: its ROC AUC is the Mann-Whitney statistic P(TTFT cold > TTFT hot), reported
 * oriented (max(A, 1 − A): an attacker picks the better side). Run with the defence on and
 * off (the baseline, so the benchmark can fail).
 *
 * The defence's cost: on a warm worker, SIDECHANNEL_TENANTS new tenants each send 4 DEEP
 * completions at once (64 tokens, temperature 0.8); tokens/s from the first request to the
 * last completion, defence on ÷ off. Every first use a new tenant makes of an expert
 * already HOT waits for the tier's load estimate, so new tenants pay it; old ones do not.
 *
 * Targets: AUC ≤ 0.55 with the defence on, ≥ 0.9 with it off.
 */
import { ensureModel } from "@lite/model";
import { wsClient, type WorkerProcess } from "@lite/testing";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, percentile, startPhase, type LiveServices, type Phase } from "./lib/live-stack";
import { streamOne } from "./lib/load";

const MODEL = "default";
const PROBE = { prompt: "Which experts are hot in here?", maxTokens: 1, mode: "DEEP", seed: "probe", temperature: 0 };

interface Trial {
  cls: "HOT" | "COLD";
  ttftMs: number;
}

interface SettingFigures {
  defence: "on" | "off";
  trials: Trial[];
  hot: { p50: number; p99: number; mean: number };
  cold: { p50: number; p99: number; mean: number };
  /** P(TTFT cold > TTFT hot) + ½ P(equal) */
  auc: number;
  /** max(auc, 1 − auc) */
  aucOriented: number;
  tokensPerSecond: number;
  throughputTokens: number;
}

/** Shuffled HOT/COLD order, `perClass` of each (fixed seed: runs are comparable). */
function classOrder(perClass: number): Array<"HOT" | "COLD"> {
  const order: Array<"HOT" | "COLD"> = [
    ...Array.from({ length: perClass }, () => "HOT" as const),
    ...Array.from({ length: perClass }, () => "COLD" as const),
  ];
  let s = 0x9e3779b9;
  for (let i = order.length - 1; i > 0; i--) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function rocAuc(positives: number[], negatives: number[]): number {
  let score = 0;
  for (const p of positives) for (const n of negatives) score += p > n ? 1 : p === n ? 0.5 : 0;
  return score / (positives.length * negatives.length);
}

function stats(xs: number[]) {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), mean: xs.reduce((a, b) => a + b, 0) / xs.length };
}

async function restartWorker(phase: Phase, current: WorkerProcess, id: string): Promise<WorkerProcess> {
  current.kill("SIGKILL");
  await current.exited;
  return phase.spawnWorker(id);
}

async function run(phase: Phase, key: string, http: Phase["admin"], req: typeof PROBE) {
  const ws = wsClient(phase.url, key);
  try {
    const r = await streamOne(http, ws, req);
    if (r.error || r.ttftMs === Infinity) throw new Error(`sidechannel: a completion failed: ${r.error ?? "no token"}`);
    return r;
  } finally {
    await ws.dispose();
  }
}

async function runSetting(
  ctx: BenchContext,
  live: LiveServices,
  defence: "on" | "off",
  perClass: number,
  throughputTenants: number,
): Promise<SettingFigures> {
  const phase = await startPhase(ctx, live, {
    mode: "fair",
    workers: 1,
    batchSize: 8,
    model: MODEL,
    workerEnv: { TIMING_DEFENCE: defence },
  });
  try {
    const warmer = await phase.createTenant(`warmer-${defence}`, 1);
    const victim = await phase.createTenant(`victim-${defence}`, 1);
    let worker = phase.workers[0];
    const trials: Trial[] = [];
    const order = classOrder(perClass);
    for (let i = 0; i < order.length; i++) {
      const cls = order[i];
      worker = await restartWorker(phase, worker, `sc-${defence}-${i}`);
      await run(phase, warmer.key, warmer.http, { ...PROBE, prompt: `warm up ${i}`, mode: "FAST", maxTokens: 4 });
      await run(phase, victim.key, victim.http, { ...PROBE, mode: cls === "HOT" ? "DEEP" : "FAST" });
      const attacker = await phase.createTenant(`attacker-${defence}-${i}`, 1);
      const probe = await run(phase, attacker.key, attacker.http, PROBE);
      trials.push({ cls, ttftMs: probe.ttftMs });
      if (i % 10 === 9) ctx.log(`sidechannel/${defence}: ${i + 1}/${order.length} trials`);
    }
    const hot = trials.filter((t) => t.cls === "HOT").map((t) => t.ttftMs);
    const cold = trials.filter((t) => t.cls === "COLD").map((t) => t.ttftMs);
    const auc = rocAuc(cold, hot);

    // The defence's cost in tokens/s: new tenants on a warm worker.
    worker = await restartWorker(phase, worker, `sc-${defence}-throughput`);
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        [0, 1, 2, 3].map((k) =>
          run(phase, warmer.key, warmer.http, {
            prompt: `warm the deep tiers ${round} ${k}`,
            maxTokens: 32,
            mode: "DEEP",
            seed: `w${round}${k}`,
            temperature: 0.8,
          }),
        ),
      );
    }
    const tenants = await Promise.all(
      Array.from({ length: throughputTenants }, (_, k) => phase.createTenant(`new-${defence}-${k}`, 1)),
    );
    const started = performance.now();
    const results = await Promise.all(
      tenants.flatMap((t, k) =>
        [0, 1, 2, 3].map((j) =>
          run(phase, t.key, t.http, {
            prompt: `tenant ${k} asks question ${j}`,
            maxTokens: 64,
            mode: "DEEP",
            seed: `${k}-${j}`,
            temperature: 0.8,
          }),
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const tokens = results.reduce((a, r) => a + r.tokens, 0);
    return {
      defence,
      trials,
      hot: stats(hot),
      cold: stats(cold),
      auc,
      aucOriented: Math.max(auc, 1 - auc),
      tokensPerSecond: tokens / seconds,
      throughputTokens: tokens,
    };
  } finally {
    await phase.stop();
  }
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

export const bench: Benchmark = {
  name: "sidechannel",
  description:
    "An attacker tenant's ROC AUC at telling from its own time to first token whether a victim made an expert hot, with the timing defence on and off; and what the defence costs in tokens/s.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const perClass = Number(process.env.SIDECHANNEL_TRIALS ?? 30);
    const throughputTenants = Number(process.env.SIDECHANNEL_TENANTS ?? 6);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    let on: SettingFigures, off: SettingFigures;
    try {
      on = await runSetting(ctx, live, "on", perClass, throughputTenants);
      off = await runSetting(ctx, live, "off", perClass, throughputTenants);
    } finally {
      await live.stop();
    }
    const onMet = on.aucOriented <= 0.55;
    const offMet = off.aucOriented >= 0.9;
    const cost = on.tokensPerSecond / off.tokensPerSecond;
    const row = (f: SettingFigures) =>
      `| ${f.defence} | ${ms(f.hot.p50)} / ${ms(f.hot.mean)} | ${ms(f.cold.p50)} / ${ms(f.cold.mean)} | ${f.auc.toFixed(3)} | ${f.aucOriented.toFixed(3)} | ${f.tokensPerSecond.toFixed(0)} |`;
    const summary = [
      `### sidechannel`,
      ``,
      `Per trial a freshly started worker (\`${MODEL}\` model, batch 8); a warmer tenant's FAST completion; the victim runs the probe's request in DEEP (class HOT: every expert the probe uses becomes HOT) or FAST (class COLD); then a tenant new to the worker sends the probe (DEEP, 1 token, temperature 0) and times createCompletion → first token at the client. ${perClass} trials per class in a shuffled order. AUC = P(TTFT cold > TTFT hot), oriented = max(AUC, 1 − AUC). Cost: ${throughputTenants} new tenants × 4 DEEP completions of 64 tokens at once on a warm worker, tokens/s at the client. ${ctx.cores} cores.`,
      ``,
      `| defence | HOT TTFT p50 / mean | COLD TTFT p50 / mean | AUC | AUC oriented | new tenants' tokens/s |`,
      `| --- | --- | --- | --- | --- | --- |`,
      row(on),
      row(off),
      ``,
      `Targets (issue 10): AUC ≤ 0.55 with the defence on: ${onMet ? "met" : "NOT met"} (${on.aucOriented.toFixed(3)}); ≥ 0.9 with it off: ${offMet ? "met" : "NOT met"} (${off.aucOriented.toFixed(3)}). The defence's cost for new tenants: ${cost.toFixed(2)}× the tokens/s without it.`,
    ].join("\n");
    return { summary, perClass, model: MODEL, on, off, costRatio: cost, targetMet: onMet && offMet };
  },
};
