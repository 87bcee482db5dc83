/**
 * create: what one createCompletion costs the deployment, ÷ what the cheapest authenticated
 * GraphQL request (`me`) costs it, measured in the same run. Issue 9 names a cheaper create
 * as the lever for isolation and overhead: under the isolation flood the heavy tenant's
 * creates keep the API, PostgreSQL and Redis busy on the core the worker leaves
 * (docs/PERFORMANCE.md), so every hop of a light request waits.
 *
 * Load: CREATE_LANES (8) clients of one tenant, each sending its requests back to back over
 * HTTP (closed loop: the API is the bottleneck) for CREATE_SECONDS (default 10) after 2 s of
 * the same load not measured. create: FAST completions of 16 tokens with a short prompt, no
 * worker (each is admitted, written and queued; the bench tenant's quotas are far above
 * them). me: `{ me { role } }`. Phases, each on a fresh deployment: me, create, me, create
 * (CREATE_ROUNDS, default 2, of each), interleaved because this machine's speed drifts.
 *
 * Reported per kind of request (pooled over its phases): requests/s, latency p50/p99 at the
 * client, and per request: the API process' CPU (all its threads), the whole machine's busy
 * CPU less this process' own (the API, PostgreSQL, Redis and anything else), and Redis
 * commands (INFO total_commands_processed, which counts a Lua script's own calls too: 28 for
 * a create that sends 7 commands).
 * The figure: machine CPU per create ÷ per `me`. No target: it tracks the create path's cost.
 */
import { Redis } from "ioredis";
import { CREATE_COMPLETION } from "@lite/testing";
import { cpuWindow } from "./lib/proc-cpu";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, percentile, startPhase, type LiveServices } from "./lib/live-stack";

const MODEL = "default";
const LANES = Number(process.env.CREATE_LANES ?? 8);
const SECONDS = Number(process.env.CREATE_SECONDS ?? 10);
const ROUNDS = Number(process.env.CREATE_ROUNDS ?? 2);
const WARMUP_SECONDS = 2;
const ME = "query { me { role } }";

type Kind = "me" | "create";

interface Window {
  requests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  latenciesMs: number[];
  apiCpuSeconds: number | null;
  /** machine busy CPU less this process' own */
  stackCpuSeconds: number | null;
  redisCommands: number;
}

async function redisCommands(redis: Redis): Promise<number> {
  const info = await redis.info("stats");
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Every lane sends `one()` back to back until `seconds` pass. */
async function load(one: (lane: number, i: number) => Promise<string | null>, seconds: number) {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let i = 0; performance.now() < until; i++) {
        const t0 = performance.now();
        const error = await one(lane, i).catch((e: unknown) => String(e));
        latenciesMs.push(performance.now() - t0);
        if (error !== null) {
          errors++;
          firstError ??= error;
        }
      }
    }),
  );
  return { latenciesMs, errors, firstError };
}

async function runPhase(ctx: BenchContext, live: LiveServices, kind: Kind, round: number): Promise<Window> {
  const phase = await startPhase(ctx, live, { mode: "fair", workers: 0, batchSize: 16, model: MODEL });
  const redis = new Redis(live.services.redisUrl, { lazyConnect: false });
  try {
    const tenant = await phase.createTenant(`create-${kind}-${round}`, 1);
    const one = async (lane: number, i: number): Promise<string | null> => {
      const r =
        kind === "me"
          ? await tenant.http.request(ME)
          : await tenant.http.request(CREATE_COMPLETION, {
              input: { prompt: `lane ${lane} request ${i}`, maxTokens: 16, mode: "FAST", seed: String(i) },
            });
      return r.errors?.length ? `${r.status}: ${r.errors[0].message}` : null;
    };
    await load(one, WARMUP_SECONDS);
    const commands0 = await redisCommands(redis);
    const self0 = process.cpuUsage();
    const cpu = cpuWindow({ api: { pid: phase.apiPid ?? -1 } });
    const t0 = performance.now();
    const r = await load(one, SECONDS);
    const seconds = (performance.now() - t0) / 1000;
    const w = cpu.end();
    const self = process.cpuUsage(self0);
    const commands = (await redisCommands(redis)) - commands0 - 1; // less the INFO itself
    const selfSeconds = (self.user + self.system) / 1e6;
    return {
      requests: r.latenciesMs.length,
      errors: r.errors,
      ...(r.firstError ? { firstError: r.firstError } : {}),
      seconds,
      latenciesMs: r.latenciesMs,
      apiCpuSeconds: w.cores.api === null ? null : w.cores.api * seconds,
      stackCpuSeconds: w.machineCores === null ? null : w.machineCores * seconds - selfSeconds,
      redisCommands: commands,
    };
  } finally {
    redis.disconnect();
    await phase.stop();
  }
}

interface KindFigures {
  kind: Kind;
  phases: number;
  requests: number;
  errors: number;
  firstError?: string;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** per request, ms */
  apiCpuMs: number | null;
  stackCpuMs: number | null;
  redisCommands: number;
}

function pooled(kind: Kind, windows: Window[]): KindFigures {
  const requests = windows.reduce((a, w) => a + w.requests, 0);
  const sum = (f: (w: Window) => number | null) =>
    windows.some((w) => f(w) === null) ? null : windows.reduce((a, w) => a + f(w)!, 0);
  const perRequestMs = (f: (w: Window) => number | null) => {
    const s = sum(f);
    return s === null ? null : (s * 1000) / requests;
  };
  const latencies = windows.flatMap((w) => w.latenciesMs);
  return {
    kind,
    phases: windows.length,
    requests,
    errors: windows.reduce((a, w) => a + w.errors, 0),
    ...(windows.find((w) => w.firstError) ? { firstError: windows.find((w) => w.firstError)!.firstError } : {}),
    requestsPerSecond: requests / windows.reduce((a, w) => a + w.seconds, 0),
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    apiCpuMs: perRequestMs((w) => w.apiCpuSeconds),
    stackCpuMs: perRequestMs((w) => w.stackCpuSeconds),
    redisCommands: windows.reduce((a, w) => a + w.redisCommands, 0) / requests,
  };
}

const f1 = (v: number | null) => (v === null ? "n/a" : v.toFixed(2));

export const bench: Benchmark = {
  name: "create",
  description:
    "CPU per createCompletion (API process, whole stack) and Redis commands per create, ÷ the same for the cheapest authenticated request, at saturation",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const live = await bringUpLiveServices(ctx);
    const windows: Record<Kind, Window[]> = { me: [], create: [] };
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        for (const kind of ["me", "create"] as const) {
          ctx.log(`create/${kind} ${round}: ${LANES} lanes for ${SECONDS} s`);
          const w = await runPhase(ctx, live, kind, round);
          ctx.log(
            `create/${kind} ${round}: ${(w.requests / w.seconds).toFixed(0)} requests/s, API ${f1(w.apiCpuSeconds && (w.apiCpuSeconds * 1000) / w.requests)} ms CPU each`,
          );
          windows[kind].push(w);
        }
      }
    } finally {
      await live.stop();
    }
    const me = pooled("me", windows.me);
    const create = pooled("create", windows.create);
    const ratio = (f: (k: KindFigures) => number | null) => {
      const a = f(create);
      const b = f(me);
      return a === null || b === null ? null : a / b;
    };
    const ratios = { stackCpu: ratio((k) => k.stackCpuMs), apiCpu: ratio((k) => k.apiCpuMs) };
    const errors = me.errors + create.errors;
    const row = (k: KindFigures) =>
      `| ${k.kind === "me" ? "`me { role }`" : "createCompletion"} | ${k.requests} | ${k.errors} | ${k.requestsPerSecond.toFixed(0)} | ${k.latencyP50Ms.toFixed(1)} ms | ${k.latencyP99Ms.toFixed(1)} ms | ${f1(k.apiCpuMs)} ms | ${f1(k.stackCpuMs)} ms | ${k.redisCommands.toFixed(1)} |`;
    const summary = [
      `### create`,
      ``,
      `${LANES} clients of one tenant send requests back to back over HTTP for ${SECONDS} s (after ${WARMUP_SECONDS} s not measured), no worker: createCompletion (FAST, 16 tokens, short prompt: admitted, written, queued) against the cheapest authenticated request, \`me { role }\`. Phases interleaved, ${ROUNDS} of each kind, each on a fresh deployment; figures pooled per kind. Stack CPU = the machine's busy CPU less the load generator's own (API, PostgreSQL, Redis). ${ctx.cores} cores.`,
      ``,
      `| request | requests | errors | requests/s | latency p50 | latency p99 | API CPU each | stack CPU each | Redis commands each |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      row(me),
      row(create),
      ``,
      `createCompletion ÷ \`me\`: stack CPU ${f1(ratios.stackCpu)}, API CPU ${f1(ratios.apiCpu)}.${errors > 0 ? ` ${errors} requests failed (first: ${me.firstError ?? create.firstError}).` : ""} No target: the figure tracks the cost of the create path (issue 9's lever for isolation and overhead).`,
    ].join("\n");
    return { summary, lanes: LANES, seconds: SECONDS, rounds: ROUNDS, model: MODEL, me, create, ratios, errors };
  },
};
