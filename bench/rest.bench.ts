/**
 * rest: the OpenAI-compatible REST endpoint against GraphQL for the same load (issue 12).
 * REST: POST /v1/completions with stream: true, read as Server-Sent Events by the official
 * `openai` client (what users run). GraphQL: createCompletion over HTTP, then the
 * completionTokens subscription over graphql-ws (bench/lib/load.ts streamOne).
 *
 * Load, the same for both: STREAMS clients of one tenant, each streaming FAST completions of
 * MAX_TOKENS tokens (temperature 0.8, distinct seeds, the same seed sequence in every run)
 * back to back for REST_SECONDS (default 30), after REST_WARMUP_SECONDS (default 5) of the
 * same load not measured. A client stops starting completions at the deadline and finishes
 * the one it has. Each client keeps its own connection the way an application would: a
 * graphql-ws socket open for the whole run (not lazy), or an `openai` client on Node's fetch
 * (keep-alive). One worker, batch STREAMS (every stream in the batch), `default` model.
 *
 * Measured at the client: TTFT = request sent (createCompletion / POST) → first token
 * received; tokens/s = tokens received by all clients ÷ wall time (first request → last
 * stream's end). GraphQL: a token is a token event (an EOS token is one, with empty text).
 * REST: the byte tokeniser generates one ASCII character per token, so a token is a chunk
 * with text, except EOS, which has no text and so no chunk; the tokens of a completion are
 * therefore the usage chunk's completion_tokens (stream_options.include_usage, the last
 * chunk the client receives), the chunks with text when it did not come.
 *
 * Runs, each on a fresh phase (database, Redis prefix, API process, worker): GraphQL, REST,
 * GraphQL again. The baseline is the mean of the two GraphQL runs; their difference is the
 * drift of the machine over the bench. Target: REST tokens/s ÷ GraphQL tokens/s ≥ 0.95.
 */
import OpenAI from "openai";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { ensureModel } from "@lite/model";
import { wsUrlOf } from "@lite/testing";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, percentile, sleep, startPhase, type LiveServices, type Phase } from "./lib/live-stack";
import { streamOne, type CompletionRequest } from "./lib/load";

const MODEL = "default";
const STREAMS = 8;
const MAX_TOKENS = 64;
const BATCH = STREAMS;
const TARGET_RATIO = 0.95;
/** seeds of the warm-up, apart from the measured run's (lane × 1e6 + i) */
const WARMUP_SEED_BASE = 900_000;

type Transport = "graphql" | "rest";
type RunName = "graphql-1" | "rest" | "graphql-2";

/** One completion as its client saw it. */
interface Sample {
  /** request sent → first token received; Infinity when no token came */
  ttftMs: number;
  tokens: number;
  /** REST: the chunks with text */
  textChunks?: number;
  error?: string;
}

/** One client's connection and how it streams one completion. */
interface Lane {
  one(req: CompletionRequest): Promise<Sample>;
  close(): Promise<void>;
}

interface RunFigures {
  run: RunName;
  transport: Transport;
  completions: number;
  errors: number;
  firstError?: string;
  /** completions that ended without a token (EOS first) */
  withoutTokens: number;
  tokens: number;
  wallSeconds: number;
  tokensPerSecond: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  ttftMaxMs: number;
  /** REST: the chunks with text (tokens less the EOS tokens) */
  textChunks?: number;
}

function request(lane: number, i: number): CompletionRequest {
  return {
    prompt: `client ${lane} request ${i}: tell me more`,
    maxTokens: MAX_TOKENS,
    mode: "FAST",
    seed: String(lane * 1_000_000 + i),
    temperature: 0.8,
  };
}

/** A graphql-ws socket kept open for the run (the testing helper's client closes it between subscriptions). */
function graphqlLane(phase: Phase, tenant: { key: string; http: Phase["admin"] }, log: (m: string) => void): Lane {
  const ws: Client = createClient({
    url: wsUrlOf(phase.url),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${tenant.key}` },
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: (e) => log(`rest: graphql-ws connection failed: ${String(e)}`),
  });
  return {
    async one(req) {
      const r = await streamOne(tenant.http, ws, req);
      return { ttftMs: r.ttftMs, tokens: r.tokens, error: r.error };
    },
    async close() {
      await ws.dispose();
    },
  };
}

/** The official client, as an application would configure it (no retries, so a failure is seen). */
function restLane(phase: Phase, key: string): Lane {
  const client = new OpenAI({ apiKey: key, baseURL: new URL("/v1", phase.url).href, maxRetries: 0 });
  return {
    async one(req) {
      const body: OpenAI.CompletionCreateParamsStreaming & { mode: string } = {
        model: MODEL,
        prompt: req.prompt,
        max_tokens: req.maxTokens,
        temperature: req.temperature,
        seed: Number(req.seed),
        stream: true,
        stream_options: { include_usage: true },
        mode: req.mode, // this runtime's extension
      };
      const sentAt = performance.now();
      let ttftMs = Infinity;
      let textChunks = 0;
      let usageTokens: number | undefined;
      try {
        const stream = await client.completions.create(body);
        for await (const chunk of stream) {
          if (chunk.usage) usageTokens = chunk.usage.completion_tokens;
          if (chunk.choices[0]?.text) {
            if (ttftMs === Infinity) ttftMs = performance.now() - sentAt;
            textChunks++;
          }
        }
      } catch (e) {
        return { ttftMs, tokens: textChunks, textChunks, error: e instanceof Error ? e.message : String(e) };
      }
      return { ttftMs, tokens: usageTokens ?? textChunks, textChunks };
    },
    close: () => Promise.resolve(), // fetch's keep-alive pool idles out by itself
  };
}

/** Every lane streams completions back to back until `seconds` have passed, then finishes its last. */
async function runLoad(lanes: Lane[], seconds: number, seedBase: number) {
  const samples: Sample[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    lanes.map(async (lane, l) => {
      for (let i = 0; performance.now() < until; i++) {
        const s = await lane.one(request(l, seedBase + i));
        samples.push(s);
        if (s.error) await sleep(100); // a failing transport must not spin
      }
    }),
  );
  return { samples, wallSeconds: (performance.now() - started) / 1000 };
}

function figures(run: RunName, transport: Transport, samples: Sample[], wallSeconds: number): RunFigures {
  const ttft = samples.map((s) => s.ttftMs).filter(Number.isFinite);
  const tokens = samples.reduce((a, s) => a + s.tokens, 0);
  const failed = samples.filter((s) => s.error);
  return {
    run,
    transport,
    completions: samples.length,
    errors: failed.length,
    ...(failed.length > 0 ? { firstError: failed[0].error } : {}),
    withoutTokens: samples.filter((s) => !s.error && s.tokens === 0).length,
    tokens,
    wallSeconds,
    tokensPerSecond: tokens / wallSeconds,
    ttftP50Ms: percentile(ttft, 50),
    ttftP99Ms: percentile(ttft, 99),
    ttftMaxMs: ttft.length > 0 ? Math.max(...ttft) : NaN,
    ...(transport === "rest" ? { textChunks: samples.reduce((a, s) => a + (s.textChunks ?? 0), 0) } : {}),
  };
}

async function runPhase(
  ctx: BenchContext,
  live: LiveServices,
  run: RunName,
  transport: Transport,
  seconds: number,
  warmupSeconds: number,
): Promise<RunFigures> {
  const phase = await startPhase(ctx, live, { mode: "fair", workers: 1, batchSize: BATCH, model: MODEL });
  try {
    const tenant = await phase.createTenant(`rest-${run}`, 1);
    const lanes = Array.from({ length: STREAMS }, () =>
      transport === "rest" ? restLane(phase, tenant.key) : graphqlLane(phase, tenant, ctx.log),
    );
    try {
      ctx.log(`rest/${run}: warm-up, ${STREAMS} streams for ${warmupSeconds} s`);
      await runLoad(lanes, warmupSeconds, WARMUP_SEED_BASE);
      ctx.log(`rest/${run}: ${STREAMS} streams for ${seconds} s`);
      const { samples, wallSeconds } = await runLoad(lanes, seconds, 0);
      const f = figures(run, transport, samples, wallSeconds);
      ctx.log(
        `rest/${run}: ${f.tokensPerSecond.toFixed(0)} tokens/s, TTFT p50 ${f.ttftP50Ms.toFixed(1)} ms, ${f.errors} errors`,
      );
      return f;
    } finally {
      await Promise.all(lanes.map((l) => l.close()));
    }
  } finally {
    await phase.stop();
  }
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

export const bench: Benchmark = {
  name: "rest",
  description:
    "Tokens/s and time to first token through the OpenAI-compatible REST endpoint (SSE, the openai client) ÷ GraphQL (createCompletion + graphql-ws subscription), the same concurrent streaming load.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.REST_SECONDS ?? 30);
    const warmupSeconds = Number(process.env.REST_WARMUP_SECONDS ?? 5);
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const live = await bringUpLiveServices(ctx);
    let graphql1: RunFigures, rest: RunFigures, graphql2: RunFigures;
    try {
      graphql1 = await runPhase(ctx, live, "graphql-1", "graphql", seconds, warmupSeconds);
      rest = await runPhase(ctx, live, "rest", "rest", seconds, warmupSeconds);
      graphql2 = await runPhase(ctx, live, "graphql-2", "graphql", seconds, warmupSeconds);
    } finally {
      await live.stop();
    }
    const mean = (f: (r: RunFigures) => number) => (f(graphql1) + f(graphql2)) / 2;
    const baseline = {
      tokensPerSecond: mean((r) => r.tokensPerSecond),
      ttftP50Ms: mean((r) => r.ttftP50Ms),
      ttftP99Ms: mean((r) => r.ttftP99Ms),
    };
    /** |run 1 − run 2| ÷ their mean, tokens/s */
    const drift = Math.abs(graphql1.tokensPerSecond - graphql2.tokensPerSecond) / baseline.tokensPerSecond;
    const ratios = {
      tokensPerSecond: rest.tokensPerSecond / baseline.tokensPerSecond,
      ttftP50: rest.ttftP50Ms / baseline.ttftP50Ms,
      ttftP99: rest.ttftP99Ms / baseline.ttftP99Ms,
    };
    const errors = graphql1.errors + rest.errors + graphql2.errors;
    const met = ratios.tokensPerSecond >= TARGET_RATIO;
    const row = (r: RunFigures) =>
      `| ${r.run} | ${r.transport === "rest" ? "REST + SSE (openai client)" : "GraphQL + graphql-ws"} | ${r.completions} | ${r.errors} | ${r.tokens} | ${r.wallSeconds.toFixed(1)} | ${r.tokensPerSecond.toFixed(0)} | ${ms(r.ttftP50Ms)} | ${ms(r.ttftP99Ms)} | ${ms(r.ttftMaxMs)} |`;
    const summary = [
      `### rest`,
      ``,
      `${STREAMS} clients of one tenant, each streaming FAST completions of ${MAX_TOKENS} tokens (temperature 0.8, distinct seeds, the same seeds in every run) back to back for ${seconds} s after ${warmupSeconds} s of warm-up; REST: POST /v1/completions with stream: true through the \`openai\` client (keep-alive fetch); GraphQL: createCompletion then the completionTokens subscription, one graphql-ws socket per client held open. Measured at the client: TTFT = request sent → first token received; tokens/s = tokens received ÷ wall time. One worker, batch ${BATCH}, \`${MODEL}\` model, ${ctx.cores} cores; each run on a fresh deployment, GraphQL before and after REST.`,
      ``,
      `| run | transport | completions | errors | tokens | wall s | tokens/s | TTFT p50 | TTFT p99 | TTFT max |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      row(graphql1),
      row(rest),
      row(graphql2),
      ``,
      `Baseline (mean of the two GraphQL runs): ${baseline.tokensPerSecond.toFixed(0)} tokens/s, TTFT p50 ${ms(baseline.ttftP50Ms)}, p99 ${ms(baseline.ttftP99Ms)}; the two GraphQL runs differ by ${(drift * 100).toFixed(1)} % in tokens/s (drift). REST ÷ GraphQL: TTFT p50 ${ratios.ttftP50.toFixed(2)}, p99 ${ratios.ttftP99.toFixed(2)}. REST: ${rest.tokens} tokens by the usage chunks, ${rest.textChunks} text chunks received (the difference: EOS tokens, which have no text).${errors > 0 ? ` ${errors} completions failed (first: ${[graphql1, rest, graphql2].find((r) => r.firstError)?.firstError}).` : ""}`,
      ``,
      `Target (issue 12): REST tokens/s ÷ GraphQL tokens/s ≥ ${TARGET_RATIO}: ${met ? "met" : "NOT met"} (${ratios.tokensPerSecond.toFixed(3)}).`,
    ].join("\n");
    return {
      summary,
      seconds,
      warmupSeconds,
      streams: STREAMS,
      maxTokens: MAX_TOKENS,
      batch: BATCH,
      model: MODEL,
      graphql1,
      rest,
      graphql2,
      baseline,
      drift,
      ratios,
      errors,
      targetMet: met,
    };
  },
};
