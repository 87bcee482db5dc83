/**
 * telemetry: whole-stack tokens/s with metrics, traces and usage recording ON ÷ the same with
 * all of them OFF, measured in one run. Target >= 0.97.
 *
 * ON is what production runs: METRICS=on in the API and the worker (per-tenant Prometheus
 * series, the live per-tenant metrics published to Redis for Tenant.metrics, both /metrics
 * scraped every 15 s with the admin key as Prometheus would), OpenTelemetry traces of every
 * completion exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT, default batching) to a
 * small sink in this process that accepts and counts the POSTs, and the worker's usage events
 * written to PostgreSQL. OFF: METRICS=off, OTEL_TRACES_EXPORTER=none, and the worker's
 * BENCHMARK_BASELINE_SKIP_USAGE=true (a benchmark-only knob: nothing is billed).
 * What OFF keeps: the process-level Prometheus series and the refusal counters (they count no
 * served traffic), the expert cache's own per-tenant figures (its fairness needs them), and the
 * API's usage write for a completion it ends after its worker died (not on this path).
 *
 * Method: phases alternate ON, OFF, OFF, ON (ABBA; TELEMETRY_ROUNDS repeats it), so linear
 * drift of the shared machine cancels; ON goes first so that what a run's first phase pays
 * (a cold page cache of the expert files) counts against ON, never for it. Each phase is a fresh stack (one API process and one
 * worker process at batch 16, `default` model, mode FAST) with 4 tenants keeping 28
 * completions of 128 tokens going (closed loop: each finished stream starts the next
 * request), every token streamed to this process over graphql-ws. tokens/s is what the
 * subscribers received in the window after an 8-s warm-up. Each ON phase is checked to have
 * really recorded (spans received, usage rows, Tenant.metrics, worker series) and each OFF
 * phase to have recorded nothing.
 */
import { newId } from "@lite/core";
import { ensureModel } from "@lite/model";
import {
  collectTokens,
  CREATE_COMPLETION,
  scrapeWorkerMetrics,
  TEST_ADMIN_KEY,
  wsClient,
  type GqlHttp,
} from "@lite/testing";
import type { Client } from "graphql-ws";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, sleep, startPhase, type LiveServices } from "./lib/live-stack";
import type { CompletionRequest } from "./lib/load";
import {
  cpuMeter,
  engineWindowOf,
  envOf,
  startOtlpSink,
  type CpuWindow,
  type EngineWindow,
  type OtlpSink,
  type Telemetry,
} from "./lib/telemetry-probes";

const MODEL = "default";
const BATCH = 16;
const MAX_TOKENS = 128;
const CONCURRENCY = 28;
const TENANTS = 4;
const WARMUP_MS = 8000;
const SCRAPE_EVERY_MS = 15000;
const TARGET = 0.97;
const PROMPTS = [
  "Once upon a time",
  "The weather today",
  "In the beginning",
  "Dear reader,",
  "Notes on routing",
  "A quick test",
];

interface PhaseFigures {
  telemetry: Telemetry;
  /** tokens received by the graphql-ws subscribers in the window, per second */
  tokensPerSecond: number;
  tokens: number;
  /** completions whose stream ended in the window */
  completions: number;
  /** completions whose stream ended in the whole phase (warm-up and drain included) */
  allCompletions: number;
  errors: number;
  seconds: number;
  /** worker's lite_tokens_generated_total over the window, per second (ON only: OFF records none) */
  workerTokensPerSecond: number | null;
  /** CPU use over the window */
  cpu: CpuWindow;
  /** the worker's own `engine stats` log lines of the window, summed (where phase-to-phase spread comes from) */
  engine: EngineWindow;
  /** what the phase recorded, read after the window */
  recorded: {
    otlpPosts: number;
    spans: number;
    otlpBytes: number;
    tracedServices: string[];
    usageOutputTokens: number;
    liveOutputTokens: number;
    workerTokenSeries: number;
    scrapes: number;
  };
}

const USAGE = `query($t: ID!, $from: DateTime!, $to: DateTime!) { usage(tenantId: $t, from: $from, to: $to, granularity: HOUR) { meter quantity } }`;
const LIVE = `query($t: ID!) { tenant(id: $t) { metrics(windowSeconds: 300) { outputTokens } } }`;

/** One completion streamed to its end, each token counted as it arrives. */
async function streamCompletion(
  t: { http: GqlHttp },
  ws: Client,
  req: CompletionRequest,
  onToken: () => void,
): Promise<boolean> {
  const r = await t.http.request<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input: req });
  if (!r.data?.createCompletion) return false;
  try {
    await collectTokens(ws, r.data.createCompletion.id, 0, (e) => {
      if (!e.done) onToken();
    });
    return true;
  } catch {
    return false;
  }
}

async function runPhase(
  ctx: BenchContext,
  live: LiveServices,
  sink: OtlpSink,
  telemetry: Telemetry,
  seconds: number,
  index: number,
  tenantIds: readonly string[],
): Promise<PhaseFigures> {
  const phase = await startPhase(ctx, live, {
    mode: "fair",
    workers: 1,
    batchSize: BATCH,
    model: MODEL,
    apiEnv: envOf(telemetry, sink, "lite-llm-api"),
    workerEnv: {
      ...envOf(telemetry, sink, "lite-llm-worker"),
      BENCHMARK_BASELINE_SKIP_USAGE: telemetry === "on" ? "false" : "true",
    },
  });
  const stopped = { now: false };
  const sockets: Client[] = [];
  try {
    const tenants = await Promise.all(tenantIds.map((id, k) => phase.createTenant(`telemetry-${index}-${k}`, 1, id)));
    sockets.push(...tenants.map((t) => wsClient(phase.url, t.key)));
    sink.reset();
    let counting = false;
    let tokens = 0;
    let completions = 0;
    let allCompletions = 0;
    let errors = 0;
    const request = (lane: number, i: number): CompletionRequest => ({
      prompt: `${PROMPTS[(lane + i) % PROMPTS.length]} #${lane}-${i}`,
      maxTokens: MAX_TOKENS,
      mode: "FAST",
      seed: `${lane}-${i}`,
      temperature: 0.8,
    });
    const lanes = Array.from({ length: CONCURRENCY }, async (_, lane) => {
      const t = tenants[lane % TENANTS];
      const ws = sockets[lane % TENANTS];
      for (let i = 0; !stopped.now; i++) {
        const ok = await streamCompletion(t, ws, request(lane, i), () => {
          if (counting) tokens++;
        });
        if (!ok) errors++;
        else {
          allCompletions++;
          if (counting) completions++;
        }
      }
    });
    // ON: both /metrics scraped as Prometheus would (admin key), from the start.
    let scrapes = 0;
    const apiMetricsUrl = phase.url.replace(/\/graphql$/, "/metrics");
    const scraper =
      telemetry === "on"
        ? setInterval(() => {
            for (const url of [apiMetricsUrl, ...phase.metricsUrls])
              void scrapeWorkerMetrics(url, TEST_ADMIN_KEY).then(
                () => scrapes++,
                () => undefined,
              );
          }, SCRAPE_EVERY_MS)
        : undefined;
    const startedAt = new Date();
    await sleep(WARMUP_MS);
    const sumTokens = async () =>
      telemetry === "on" ? [...(await phase.tokensByTenant()).values()].reduce((a, b) => a + b, 0) : 0;
    const workerBefore = await sumTokens();
    const cpu = cpuMeter(phase.apiPid, phase.workers[0].pid);
    counting = true;
    const t0 = performance.now();
    const windowFrom = Date.now();
    await sleep(seconds * 1000);
    counting = false;
    const cpuWindow = cpu();
    const elapsed = (performance.now() - t0) / 1000;
    const workerAfter = await sumTokens();
    // the stats line that covers the window's last seconds comes up to 10 s later (the load goes on)
    const windowTo = Date.now();
    await sleep(10_500);
    const engine = engineWindowOf(phase.workers[0].output(), windowFrom + 5000, windowTo + 10_000);
    stopped.now = true;
    if (scraper) clearInterval(scraper);
    await Promise.race([Promise.all(lanes), sleep(20000)]);
    // What the phase recorded (usage rows are written as each completion ends; the live
    // metrics flush every second; spans are batched every 5 s).
    await sleep(6000);
    const to = new Date(Date.now() + 3600_000);
    let usageOutputTokens = 0;
    let liveOutputTokens = 0;
    for (const t of tenants) {
      const u = await t.http.request<{ usage: Array<{ meter: string; quantity: string }> }>(USAGE, {
        t: t.id,
        from: new Date(startedAt.getTime() - 3600_000).toISOString(),
        to: to.toISOString(),
      });
      usageOutputTokens += (u.data?.usage ?? [])
        .filter((b) => b.meter === "OUTPUT_TOKENS")
        .reduce((a, b) => a + Number(b.quantity), 0);
      const m = await t.http.request<{ tenant: { metrics: { outputTokens: string } } }>(LIVE, { t: t.id });
      liveOutputTokens += Number(m.data?.tenant?.metrics.outputTokens ?? 0);
    }
    const workerText = phase.metricsUrls[0].includes("undefined")
      ? ""
      : await scrapeWorkerMetrics(phase.metricsUrls[0], TEST_ADMIN_KEY).catch(() => "");
    const workerTokenSeries = (workerText.match(/^lite_tokens_generated_total\{/gm) ?? []).length;
    return {
      telemetry,
      tokensPerSecond: tokens / elapsed,
      tokens,
      completions,
      allCompletions,
      errors,
      seconds: elapsed,
      workerTokensPerSecond: telemetry === "on" ? (workerAfter - workerBefore) / elapsed : null,
      cpu: cpuWindow,
      engine,
      recorded: {
        otlpPosts: sink.posts,
        spans: sink.spans,
        otlpBytes: sink.bytes,
        tracedServices: [...sink.services].sort(),
        usageOutputTokens,
        liveOutputTokens,
        workerTokenSeries,
        scrapes,
      },
    };
  } finally {
    stopped.now = true;
    await Promise.all(sockets.map((w) => w.dispose()));
    await phase.stop();
  }
}

/** A phase that did not record what its side promises makes the whole run fail: its ratio would mean nothing. */
function checkRecorded(p: PhaseFigures): string | undefined {
  const r = p.recorded;
  if (p.telemetry === "on") {
    if (r.spans === 0 || r.tracedServices.length < 2)
      return `ON phase exported no spans of both services (${r.spans} spans from ${r.tracedServices.join(", ") || "none"})`;
    if (r.usageOutputTokens === 0) return "ON phase recorded no usage";
    if (r.liveOutputTokens === 0) return "ON phase published no live metrics";
    if (r.workerTokenSeries === 0) return "ON phase's worker has no lite_tokens_generated_total series";
  } else if (r.spans > 0 || r.usageOutputTokens > 0 || r.liveOutputTokens > 0 || r.workerTokenSeries > 0) {
    return `OFF phase recorded something: ${JSON.stringify(r)}`;
  }
  return undefined;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export const bench: Benchmark = {
  name: "telemetry",
  description:
    "Whole-stack tokens/s (GraphQL → queue → worker → stream → graphql-ws subscriber, batch 16, FAST, `default` model) with metrics, traces and usage recording ON ÷ all OFF, phases alternated ABBA in one run.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.TELEMETRY_SECONDS ?? 30);
    const rounds = Number(process.env.TELEMETRY_ROUNDS ?? 1);
    if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1)
      throw new Error(`TELEMETRY_SECONDS must be > 0 and TELEMETRY_ROUNDS an integer >= 1 (got ${seconds}, ${rounds})`);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const order: Telemetry[] = [];
    for (let r = 0; r < rounds; r++) order.push("on", "off", "off", "on");
    // TELEMETRY_ORDER=on,off (while investigating, e.g. with BENCH_WORKER_NODE_ARGS=--cpu-prof): these phases instead
    const custom = process.env.TELEMETRY_ORDER?.split(",").map((s) => s.trim());
    if (custom?.length) {
      if (!custom.every((t): t is Telemetry => t === "on" || t === "off"))
        throw new Error(`TELEMETRY_ORDER must list on and off, comma-separated (got "${process.env.TELEMETRY_ORDER}")`);
      order.splice(0, order.length, ...custom);
    }
    // The same tenant ids in every phase: routing seeds derive from them (libs/model
    // deriveRoutingSeed): with fresh tenants each phase routed the same requests through other
    // experts, other work per token (OFF phases of one run differed by up to 30 % at the same
    // worker CPU with fresh tenants).
    const tenantIds = Array.from({ length: TENANTS }, () => newId("tenant"));
    const sink = await startOtlpSink();
    const live = await bringUpLiveServices(ctx);
    const phases: PhaseFigures[] = [];
    try {
      for (const [i, telemetry] of order.entries()) {
        ctx.log(`telemetry: phase ${i + 1}/${order.length}: ${telemetry.toUpperCase()}, ${seconds} s`);
        const p = await runPhase(ctx, live, sink, telemetry, seconds, i, tenantIds);
        ctx.log(
          `telemetry: ${telemetry.toUpperCase()} ${p.tokensPerSecond.toFixed(0)} tokens/s received (${p.completions} completions, ${p.errors} errors; spans ${p.recorded.spans}, usage ${p.recorded.usageOutputTokens} output tokens, live ${p.recorded.liveOutputTokens})`,
        );
        const bad = checkRecorded(p);
        if (bad) throw new Error(`telemetry: ${bad}`);
        phases.push(p);
      }
    } finally {
      await live.stop();
      await sink.close();
    }
    const on = phases.filter((p) => p.telemetry === "on");
    const off = phases.filter((p) => p.telemetry === "off");
    const onTps = mean(on.map((p) => p.tokensPerSecond));
    const offTps = mean(off.map((p) => p.tokensPerSecond));
    const ratio = on.length && off.length ? onTps / offTps : NaN;
    const met = ratio >= TARGET;
    const spanPerCompletion = mean(on.map((p) => p.recorded.spans / Math.max(1, p.allCompletions)));
    const summary = [
      `### telemetry`,
      ``,
      `Batch ${BATCH}, mode FAST, \`${MODEL}\` model, ${MAX_TOKENS}-token completions, ${ctx.cores} cores, ${seconds} s windows after ${WARMUP_MS / 1000} s of warm-up. Each phase a fresh stack: one API process and one worker process, ${CONCURRENCY} completions kept going by ${TENANTS} tenants, every token streamed to this process over graphql-ws (tokens/s = tokens the subscribers received). Phases alternate ${order.map((t) => t.toUpperCase()).join(", ")} so drift of the shared machine cancels.`,
      ``,
      `ON: METRICS=on in API and worker (Prometheus series, live per-tenant metrics in Redis; both /metrics scraped every ${SCRAPE_EVERY_MS / 1000} s), traces of every completion exported over OTLP/HTTP to a sink in the bench process, usage events written by the worker. OFF: METRICS=off, OTEL_TRACES_EXPORTER=none, BENCHMARK_BASELINE_SKIP_USAGE=true. OFF still keeps the process-level series and refusal counters, and the expert cache's own per-tenant figures.`,
      ``,
      `| phase | telemetry | tokens/s received | completions | errors | spans exported | usage OUTPUT_TOKENS | live outputTokens | CPU: API / worker / bench / rest / machine |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      ...phases.map(
        (p, i) =>
          `| ${i + 1} | ${p.telemetry.toUpperCase()} | ${p.tokensPerSecond.toFixed(0)} | ${p.completions} | ${p.errors} | ${p.recorded.spans} (${p.recorded.otlpPosts} posts) | ${p.recorded.usageOutputTokens} | ${p.recorded.liveOutputTokens} | ${[p.cpu.api, p.cpu.worker, p.cpu.bench, p.cpu.rest, p.cpu.machine].map((c) => c.toFixed(2)).join(" / ")} |`,
      ),
      ``,
      `| phase | telemetry | worker: tokens per step | step ms | flush ms | fill ms/s | idle ms/s | seconds of stats |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- |`,
      ...phases.map(
        (p, i) =>
          `| ${i + 1} | ${p.telemetry.toUpperCase()} | ${p.engine.tokensPerStep.toFixed(2)} | ${p.engine.stepMsAvg.toFixed(2)} | ${p.engine.flushMsAvg.toFixed(2)} | ${p.engine.fillMsPerSecond.toFixed(0)} | ${p.engine.idleMsPerSecond.toFixed(0)} | ${p.engine.seconds.toFixed(0)} |`,
      ),
      ``,
      `Worker: its own \`engine stats\` log lines whose 10-s periods end inside the window: tokens per decode step (how full the batch ran), mean step and flush time, and ms per second spent filling the batch and idle.`,
      ``,
      `CPU: cores busy over the window (/proc): the API and worker processes, this bench process (graphql-ws clients, OTLP sink, scrapes), the rest (PostgreSQL, Redis, anything else on the machine) and the whole machine (${ctx.cores} cores).`,
      ``,
      `Mean ON ${onTps.toFixed(0)} tokens/s ÷ mean OFF ${offTps.toFixed(0)} tokens/s = **${ratio.toFixed(3)}** (${spanPerCompletion.toFixed(1)} spans per completion). Target >= ${TARGET}: ${met ? "met" : "NOT met"}.`,
    ].join("\n");
    return {
      summary,
      batch: BATCH,
      model: MODEL,
      seconds,
      rounds,
      order,
      phases,
      onTokensPerSecond: onTps,
      offTokensPerSecond: offTps,
      ratio,
      target: TARGET,
      targetMet: met,
    };
  },
};
