/**
 * isolation: a light tenant sends LIGHT_PER_SECOND (4) requests/s (LIGHT_MAX_TOKENS-token
 * completions, streamed: 64 tokens/s, a tenth of the worker's capacity)
 * while a heavy tenant offers 10× the worker's capacity; the light tenant's time to first
 * token (client side: createCompletion sent → first token event received) is compared with
 * the same light load alone. The same flood then runs through a single FIFO queue
 * (SCHEDULER_MODE=fifo) as the baseline. One worker, batch 16, FAST, `default` model.
 *
 * Method per phase (fresh database, Redis prefix, API and worker each):
 *  - alone: the light load for ISOLATION_SECONDS / ISOLATION_ROUNDS (default 30 / 3);
 *  - fair / fifo: the heavy tenant first runs backlogged for CALIBRATE_SECONDS to measure the
 *    worker's capacity C (tokens/s); it then offers 10 × C tokens/s as HEAVY_MAX_TOKENS-token
 *    requests at a fixed rate (not streamed), and the light load runs for the phase's window
 *    (fair: ISOLATION_SECONDS / ISOLATION_ROUNDS; fifo: ISOLATION_SECONDS).
 *    A light request still without a token when the phase ends counts with its waiting time
 *    so far (a lower bound; the FIFO baseline has many).
 * Interleaved: alone, fair, alone, fair, … (ISOLATION_ROUNDS of each), each kind's requests
 * pooled into one p50/p99; then one FIFO phase of ISOLATION_SECONDS. Why: this machine's speed
 * drifts within minutes (docs/PERFORMANCE.md), and with one alone phase before one fair phase
 * the ratio took that drift for isolation: four runs at one commit gave 1.18–1.47 while the
 * fair p99 stayed in its usual range and the alone phase's went 77–123 ms (35–97 ms before).
 * Reported: light p50/p99 TTFT per phase, and the ratios fair ÷ alone and fifo ÷ alone.
 * The light tenant runs in a node process of its own (bench/lib/isolation-light.ts), as the
 * abuse bench's victim does: in the bench's process, which also sends the flood, its TTFTs
 * included that process's own pauses. Its GC and event-loop delay per phase are reported.
 * Target: fair p99 ratio <= 1.5. 4 requests/s so that a p99 is one: at 1/s a 30-s phase had
 * 30 samples and its "p99" was its slowest request (three runs in a row gave 1.49, 0.82 and
 * 1.96, the alone phase's own p99 going 82–199 ms).
 */
import { ensureModel } from "@lite/model";
import { CREATE_COMPLETION, TOKENS_SUBSCRIPTION } from "@lite/testing";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, sleep, startPhase, type LiveServices, type Phase } from "./lib/live-stack";
import { percentile, percentileRatioInterval, type Interval } from "./lib/stats";
import { forkClientProcess } from "./lib/client-process";
import { LIGHT_MAX_TOKENS, LIGHT_PER_SECOND, type LightSpec, type LightWindow } from "./lib/isolation-light";
import type { ClientProcess } from "./lib/lean-client";
import { keepBacklogged } from "./lib/load";

const MODEL = "default";
const BATCH = 16;
const HEAVY_MAX_TOKENS = 400;
const OVERLOAD = 10;
const CALIBRATE_SECONDS = 8;
/** the fair p99 ratio's bootstrap interval (bench/lib/stats.ts), as the report names it */
const INTERVAL = { iterations: 2000, confidence: 0.9 } as const;
/** rounds of 4 light requests (the measured shape) before a phase's window: its experts' first uses */
const LIGHT_WARMUP_ROUNDS = 4;

interface PhaseFigures {
  phase: "alone" | "fair" | "fifo";
  requests: number;
  unanswered: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  /** every request's TTFT, ms, in the order sent (the bootstrap interval resamples them) */
  ttftsMs: number[];
  ttftMaxMs: number;
  /** the createCompletion request alone (API: auth, TierSet, admission, row, enqueue) */
  createP50Ms: number;
  createP99Ms: number;
  /** TTFT minus the createCompletion request: queue, dispatch, first step, stream delivery */
  afterCreateP50Ms: number;
  afterCreateP99Ms: number;
  /** the light tenant's own process over its window (a client-side pause shows here) */
  client: ClientProcess;
  /**
   * the light tenant's expert first uses in the worker during the windows: held back by the
   * timing defence (an expert another tenant made resident) and loaded (an expert nobody
   * had resident); each adds a load's time to that request's first token
   */
  lightFirstUses: LightFirstUses;
  capacityTokensPerSecond?: number;
  heavyOfferedTokensPerSecond?: number;
  heavyRequestsSent?: number;
}

interface LightFirstUses {
  padded: number;
  loaded: number;
}

/** The light tenant's expert first uses in the workers so far (lite_padded_first_uses_total, lite_expert_cache_loads_total). */
async function lightFirstUses(phase: Phase, tenantId: string): Promise<LightFirstUses> {
  const [padded, loaded] = await phase.countersByTenant([
    "lite_padded_first_uses_total",
    "lite_expert_cache_loads_total",
  ]);
  return { padded: padded.get(tenantId) ?? 0, loaded: loaded.get(tenantId) ?? 0 };
}

/** The light tenant's window, with its expert first uses in the worker meanwhile. */
async function measuredWindow(
  phase: Phase,
  tenantId: string,
  light: ReturnType<typeof startLight>,
  seconds: number,
): Promise<{ window: LightWindow; firstUses: LightFirstUses }> {
  const before = await lightFirstUses(phase, tenantId);
  const window = await light.window(seconds);
  const after = await lightFirstUses(phase, tenantId);
  return { window, firstUses: { padded: after.padded - before.padded, loaded: after.loaded - before.loaded } };
}

/** The light tenant's process for one phase (bench/lib/isolation-light.ts). */
function startLight(ctx: BenchContext, spec: LightSpec) {
  const child = forkClientProcess(ctx, "isolation-light.ts", "ISOLATION_LIGHT", spec);
  const ask = async <T>(message: object): Promise<T> => {
    const m = (await child.ask(message)) as T & { error?: string };
    if (m.error !== undefined) throw new Error(`light tenant's process: ${m.error}`);
    return m;
  };
  return {
    warm: (rounds: number) => ask<{ warmed: number }>({ warm: rounds }),
    window: (seconds: number) => ask<LightWindow>({ window: seconds }),
    stop: child.stop,
  };
}

function figures(
  name: PhaseFigures["phase"],
  { results, client }: LightWindow,
  lightFirstUses: LightFirstUses,
  extra: Partial<PhaseFigures> = {},
): PhaseFigures {
  const ttft = results.map((r) => r.ttftMs);
  return {
    phase: name,
    requests: results.length,
    unanswered: results.filter((r) => r.tokens === 0).length,
    ttftP50Ms: percentile(ttft, 50),
    ttftP99Ms: percentile(ttft, 99),
    ttftsMs: ttft.map((t) => Math.round(t * 10) / 10),
    ttftMaxMs: Math.max(...ttft),
    createP50Ms: percentile(
      results.map((r) => r.createMs),
      50,
    ),
    createP99Ms: percentile(
      results.map((r) => r.createMs),
      99,
    ),
    afterCreateP50Ms: percentile(
      results.map((r) => r.ttftMs - r.createMs),
      50,
    ),
    afterCreateP99Ms: percentile(
      results.map((r) => r.ttftMs - r.createMs),
      99,
    ),
    client,
    lightFirstUses,
    ...extra,
  };
}

/** What one phase's window gave: the light tenant's requests, and the flood's figures. */
interface PhaseWindow {
  window: LightWindow;
  firstUses: LightFirstUses;
  capacityTokensPerSecond?: number;
  heavyOfferedTokensPerSecond?: number;
  heavyRequestsSent?: number;
}

/** One kind of phase's windows pooled: every request of every window, the client's figures summed. */
function pooled(name: PhaseFigures["phase"], windows: PhaseWindow[]): PhaseFigures {
  const clients = windows.map((w) => w.window.client);
  const sum = (f: (c: ClientProcess) => number) => clients.reduce((a, c) => a + f(c), 0);
  const max = (f: (c: ClientProcess) => number) => Math.max(...clients.map(f));
  const flood = windows.filter((w) => w.capacityTokensPerSecond !== undefined);
  const mean = (f: (w: PhaseWindow) => number) =>
    flood.length === 0 ? undefined : flood.reduce((a, w) => a + f(w), 0) / flood.length;
  return figures(
    name,
    {
      results: windows.flatMap((w) => w.window.results),
      client: {
        gcMs: sum((c) => c.gcMs),
        gcMajorMs: sum((c) => c.gcMajorMs),
        gcMaxPauseMs: max((c) => c.gcMaxPauseMs),
        gcCount: sum((c) => c.gcCount),
        loopDelayMaxMs: max((c) => c.loopDelayMaxMs),
        heapUsedMb: max((c) => c.heapUsedMb),
      },
    },
    {
      padded: windows.reduce((a, w) => a + w.firstUses.padded, 0),
      loaded: windows.reduce((a, w) => a + w.firstUses.loaded, 0),
    },
    {
      capacityTokensPerSecond: mean((w) => w.capacityTokensPerSecond!),
      heavyOfferedTokensPerSecond: mean((w) => w.heavyOfferedTokensPerSecond!),
      heavyRequestsSent: flood.length === 0 ? undefined : flood.reduce((a, w) => a + w.heavyRequestsSent!, 0),
    },
  );
}

async function runPhase(
  ctx: BenchContext,
  live: LiveServices,
  name: PhaseFigures["phase"],
  seconds: number,
): Promise<PhaseWindow> {
  let lightProcess: ReturnType<typeof startLight> | undefined;
  const phase = await startPhase(ctx, live, {
    mode: name === "fifo" ? "fifo" : "fair",
    workers: 1,
    batchSize: BATCH,
    model: MODEL,
  });
  try {
    const light = await phase.createTenant(`light-${name}`, 1);
    lightProcess = startLight(ctx, {
      url: phase.url,
      key: light.key,
      createCompletion: CREATE_COMPLETION,
      tokensSubscription: TOKENS_SUBSCRIPTION,
    });
    // Warm the worker (model sessions) and the light tenant's experts, not measured: each
    // first use of an expert is a load (alone) or, where another tenant made it HOT, a
    // timing-defence pad as long as one (fair): ~150-200 ms that decided the phases' p99
    // (alone 76 ms in one run, 189 ms in the next) when only 3 short requests warmed up.
    await lightProcess.warm(LIGHT_WARMUP_ROUNDS);
    if (name === "alone") {
      ctx.log(`isolation/alone: light load ${seconds} s`);
      // awaited here, not returned: the phase is stopped in `finally`
      return await measuredWindow(phase, light.id, lightProcess, seconds);
    }
    const heavy = await phase.createTenant(`heavy-${name}`, 1);
    ctx.log(`isolation/${name}: calibrating capacity ${CALIBRATE_SECONDS} s`);
    const backlog = keepBacklogged(heavy.http, 24, (i) => ({
      prompt: `heavy calibration ${i}`,
      maxTokens: HEAVY_MAX_TOKENS,
      mode: "FAST",
      seed: `c${i}`,
      temperature: 0.8,
    }));
    await sleep(3000);
    const b0 = await phase.tokensByTenant();
    const t0 = performance.now();
    await sleep(CALIBRATE_SECONDS * 1000);
    const b1 = await phase.tokensByTenant();
    const capacity = (((b1.get(heavy.id) ?? 0) - (b0.get(heavy.id) ?? 0)) * 1000) / (performance.now() - t0);
    await backlog.stop();
    // the flood: OVERLOAD × capacity tokens/s at a fixed request rate
    const offered = OVERLOAD * capacity;
    const perSecond = offered / HEAVY_MAX_TOKENS;
    ctx.log(
      `isolation/${name}: capacity ${capacity.toFixed(0)} tokens/s; heavy offers ${offered.toFixed(0)} tokens/s (${perSecond.toFixed(1)} requests/s)`,
    );
    let stopped = false;
    let sent = 0;
    const flood = (async () => {
      const start = performance.now();
      const inflight: Promise<unknown>[] = [];
      while (!stopped) {
        const due = start + (sent * 1000) / perSecond;
        await sleep(Math.max(0, due - performance.now()));
        const i = sent++;
        inflight.push(
          heavy.http.request(CREATE_COMPLETION, {
            input: {
              prompt: `heavy ${i}: go on`,
              maxTokens: HEAVY_MAX_TOKENS,
              mode: "FAST",
              seed: `h${i}`,
              temperature: 0.8,
            },
          }),
        );
        if (inflight.length > 200) await Promise.all(inflight.splice(0, 100));
      }
      await Promise.all(inflight);
    })();
    await sleep(2000);
    ctx.log(`isolation/${name}: light load ${seconds} s under the flood`);
    const measured = await measuredWindow(phase, light.id, lightProcess, seconds);
    stopped = true;
    await flood;
    return {
      ...measured,
      capacityTokensPerSecond: capacity,
      heavyOfferedTokensPerSecond: offered,
      heavyRequestsSent: sent,
    };
  } finally {
    lightProcess?.stop();
    await phase.stop();
  }
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

export const bench: Benchmark = {
  name: "isolation",
  description:
    "A light tenant's p50/p99 time-to-first-token while a heavy tenant offers 10× capacity, ÷ the same light load alone; fair scheduling vs a single FIFO queue.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.ISOLATION_SECONDS ?? 30);
    const rounds = Number(process.env.ISOLATION_ROUNDS ?? 3);
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error("ISOLATION_ROUNDS must be a positive integer");
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    let alone: PhaseFigures, fair: PhaseFigures, fifo: PhaseFigures | undefined;
    try {
      // Interleaved: alone, fair, alone, fair, … (rounds × seconds / rounds of light load each),
      // so the machine's drift weighs on both kinds of phase alike; each kind's requests are pooled.
      const windows = { alone: [] as PhaseWindow[], fair: [] as PhaseWindow[] };
      for (let r = 0; r < rounds; r++) {
        windows.alone.push(await runPhase(ctx, live, "alone", seconds / rounds));
        windows.fair.push(await runPhase(ctx, live, "fair", seconds / rounds));
      }
      alone = pooled("alone", windows.alone);
      fair = pooled("fair", windows.fair);
      // ISOLATION_SKIP_FIFO=1 skips the baseline (quicker iterations while tuning)
      if (process.env.ISOLATION_SKIP_FIFO !== "1") fifo = pooled("fifo", [await runPhase(ctx, live, "fifo", seconds)]);
    } finally {
      await live.stop();
    }
    const ratio = (p: PhaseFigures) => ({ p50: p.ttftP50Ms / alone.ttftP50Ms, p99: p.ttftP99Ms / alone.ttftP99Ms });
    const rf = ratio(fair);
    // The p99 of ~120 requests is the second-slowest: how far the ratio moves by chance alone.
    const rfInterval: Interval = percentileRatioInterval(alone.ttftsMs, fair.ttftsMs, 99, INTERVAL);
    const rq = fifo && ratio(fifo);
    const row = (p: PhaseFigures, r?: { p50: number; p99: number }) =>
      `| ${p.phase} | ${p.requests} | ${p.unanswered} | ${ms(p.ttftP50Ms)} | ${ms(p.ttftP99Ms)} | ${r ? r.p50.toFixed(2) : "1"} | ${r ? r.p99.toFixed(2) : "1"} | ${ms(p.createP50Ms)} / ${ms(p.createP99Ms)} | ${ms(p.afterCreateP50Ms)} / ${ms(p.afterCreateP99Ms)} |`;
    const summary = [
      `### isolation`,
      ``,
      `Light tenant: ${LIGHT_PER_SECOND} requests/s, ${LIGHT_MAX_TOKENS}-token completions, streamed; TTFT measured at the client (request sent → first token), in a node process of its own (until this run it shared the bench's process with the heavy flood). Heavy tenant: ${OVERLOAD}× the worker's measured capacity (${fair.capacityTokensPerSecond?.toFixed(0)} tokens/s under fair scheduling) in ${HEAVY_MAX_TOKENS}-token requests. One worker, batch ${BATCH}, FAST, \`${MODEL}\` model, ${ctx.cores} cores, ${seconds} s of light load per kind of phase: alone and fair interleaved in ${rounds} rounds of ${(seconds / rounds).toFixed(0)} s (each a fresh deployment; requests pooled per kind), then FIFO once. Unanswered requests count with their wait so far (a lower bound).`,
      ``,
      `| phase | light requests | unanswered | TTFT p50 | TTFT p99 | p50 ÷ alone | p99 ÷ alone | createCompletion p50 / p99 | TTFT after create p50 / p99 |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      row(alone),
      row(fair, rf),
      ...(fifo ? [row(fifo, rq)] : []),
      ``,
      `The light tenant's own process over each kind of phase (a client-side pause would show here): GC time (collections) summed over its windows, the longest GC pause and the longest event-loop delay of any of them. And the light tenant's expert first uses in the worker during its windows, each as long as a load for its request: held back by the timing defence (an expert the heavy tenant had made resident) and loaded.`,
      ``,
      `| phase | GC | longest GC pause | event-loop delay max | expert first uses: padded / loaded |`,
      `| --- | --- | --- | --- | --- |`,
      ...[alone, fair, ...(fifo ? [fifo] : [])].map(
        (p) =>
          `| ${p.phase} | ${ms(p.client.gcMs)} (${p.client.gcCount}) | ${ms(p.client.gcMaxPauseMs)} | ${ms(p.client.loopDelayMaxMs)} | ${p.lightFirstUses.padded} / ${p.lightFirstUses.loaded} |`,
      ),
      ``,
      `Target: fair p99 ratio <= 1.5: ${rf.p99 <= 1.5 ? "met" : "NOT met"} (${rf.p99.toFixed(2)}; ${INTERVAL.confidence * 100} % bootstrap interval ${rfInterval.low.toFixed(2)}–${rfInterval.high.toFixed(2)}, both phases' requests resampled ${INTERVAL.iterations.toLocaleString("en")} times); ${rq ? `the FIFO queue's p99 ratio is ${rq.p99.toFixed(1)}` : "the FIFO baseline was skipped in this run (ISOLATION_SKIP_FIFO=1)"}.`,
    ].join("\n");
    return {
      summary,
      seconds,
      rounds,
      batch: BATCH,
      model: MODEL,
      alone,
      fair,
      fifo,
      ratios: { fair: rf, fairP99Interval: rfInterval, fifo: rq },
      targetMet: rf.p99 <= 1.5,
    };
  },
};
