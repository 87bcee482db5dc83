/**
 * The victim of bench/abuse.bench.ts, in a small process of its own (the bench forks this
 * file once with ABUSE_VICTIM set and asks it for one window at a time), so that the
 * victim's latencies are what a lean client sees. In the bench's own process they included
 * that process's garbage-collection pauses (up to 69 ms in a window): its heap holds the
 * whole bench (the stack's handles, the model manifest, Prisma, the results). This file
 * imports nothing but node's own modules; the parent passes the URL, the key and the
 * `createCompletion` document. It runs with --expose-gc (a full collection before each
 * window) and a 32 MB young generation (fewer scavenges), and talks HTTP with node:http over
 * kept-alive sockets (fetch allocated several times as much per request: this process still
 * had scavenges of up to 31 ms in a quiet window, counted in the victim's latencies); its GC
 * time per window is reported with the figures.
 *
 * Protocol (IPC, JSON-serialized): the parent sends `{ window: seconds }`, the child answers
 * `{ samples }` (its raw latencies, errors, /readyz tallies and its own GC and event-loop
 * figures over that window); `"exit"` ends it.
 */
import http from "node:http";
import {
  constants as perfConstants,
  monitorEventLoopDelay,
  PerformanceObserver,
  type PerformanceEntry,
} from "node:perf_hooks";

const ME = "query { me { role } }";
export const CREATE_EVERY_MS = 100;

export interface VictimSpec {
  /** http://host:port/graphql */
  url: string;
  key: string;
  /** the `createCompletion` mutation document (from @lite/testing, which this process does not load) */
  createCompletion: string;
}

/** This process over one window: where a client-side pause would show. */
export interface VictimProcess {
  /** time in garbage collection (all kinds) */
  gcMs: number;
  /** of which major (mark-compact) */
  gcMajorMs: number;
  /** the longest single GC pause */
  gcMaxPauseMs: number;
  gcCount: number;
  /** the longest event-loop delay (20 ms resolution is not enough here: 1 ms) */
  loopDelayMaxMs: number;
  heapUsedMb: number;
}

export interface Samples {
  /** latency of each `me`, in send order (50 ms apart) */
  me: number[];
  /** latency of each `createCompletion`, in send order */
  create: number[];
  meErrors: number;
  createErrors: number;
  readyzPolls: number;
  readyzFailures: number;
  victim: VictimProcess;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Fires `once` every `everyMs` until `stopAt`; latencies of unanswered calls count as their wait so far. */
async function openLoop(everyMs: number, stopAt: number, once: () => Promise<boolean>, out: number[]) {
  const inflight: Promise<void>[] = [];
  let errors = 0;
  const start = performance.now();
  for (let i = 0; ; i++) {
    const due = start + i * everyMs;
    if (due >= stopAt) break;
    await sleep(Math.max(0, due - performance.now()));
    const t0 = performance.now();
    const slot = out.length;
    out.push(NaN);
    inflight.push(
      once().then(
        (ok) => {
          out[slot] = performance.now() - t0;
          if (!ok) errors++;
        },
        () => {
          out[slot] = performance.now() - t0;
          errors++;
        },
      ),
    );
  }
  await Promise.race([Promise.all(inflight), sleep(10000)]);
  const end = performance.now();
  for (let i = 0; i < out.length; i++) if (Number.isNaN(out[i])) out[i] = end - start - i * everyMs;
  return errors;
}

/** Kept-alive sockets, as fetch's pool (a socket per request in flight, reused after it). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP request over `agent`: its status and body (read whole, as a client would). */
function request(
  url: string,
  opts: { method: "GET" | "POST"; headers?: Record<string, string>; body?: string; timeoutMs?: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method,
        agent,
        headers:
          opts.body === undefined ? opts.headers : { ...opts.headers, "content-length": Buffer.byteLength(opts.body) },
        signal: opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** One GraphQL POST as the victim; ok = HTTP 200 (the body is read and parsed, as a client would). */
async function post(spec: VictimSpec, query: string, variables?: Record<string, unknown>): Promise<boolean> {
  const res = await request(spec.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${spec.key}` },
    body: JSON.stringify({ query, variables }),
  });
  JSON.parse(res.body);
  return res.status === 200;
}

/** GC entries of this process while `meter` is on. */
function gcMeter() {
  const m = { gcMs: 0, gcMajorMs: 0, gcMaxPauseMs: 0, gcCount: 0 };
  const count = (entries: PerformanceEntry[]) => {
    for (const e of entries) {
      m.gcMs += e.duration;
      m.gcCount++;
      m.gcMaxPauseMs = Math.max(m.gcMaxPauseMs, e.duration);
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) m.gcMajorMs += e.duration;
    }
  };
  const obs = new PerformanceObserver((list) => count(list.getEntries()));
  obs.observe({ entryTypes: ["gc"] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  return (): VictimProcess => {
    count(obs.takeRecords());
    obs.disconnect();
    loop.disable();
    return { ...m, loopDelayMaxMs: loop.max / 1e6, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 };
  };
}

/** One window of the victim's open-loop load: `me` every 50 ms, `createCompletion` every 100 ms, /readyz every 250 ms. */
export async function victimWindow(spec: VictimSpec, seconds: number): Promise<Samples> {
  // This process's garbage from the previous window is collected before this one starts
  // (forked with --expose-gc), so that a pause inside the window is one of this window's.
  (globalThis as { gc?: () => void }).gc?.();
  const meter = gcMeter();
  const stopAt = performance.now() + seconds * 1000;
  const readyz = spec.url.replace(/\/graphql$/, "/readyz");
  const me: number[] = [];
  const create: number[] = [];
  let readyzPolls = 0;
  let readyzFailures = 0;
  let n = 0;
  const [meErrors, createErrors] = await Promise.all([
    openLoop(50, stopAt, () => post(spec, ME), me),
    openLoop(
      CREATE_EVERY_MS,
      stopAt,
      () =>
        post(spec, spec.createCompletion, {
          input: { prompt: `victim ${n}: hi`, maxTokens: 4, mode: "FAST", seed: String(n++), temperature: 0.8 },
        }),
      create,
    ),
    openLoop(
      250,
      stopAt,
      async () => {
        readyzPolls++;
        const ok = await request(readyz, { method: "GET", timeoutMs: 2000 }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (!ok) readyzFailures++;
        return true;
      },
      [],
    ),
  ]);
  return { me, create, meErrors, createErrors, readyzPolls, readyzFailures, victim: meter() };
}

/** Child entry: a window per `{ window: seconds }` message, each answered with `{ samples }`; "exit" ends. */
function victimMain(spec: VictimSpec) {
  let queue = Promise.resolve();
  process.on("message", (m: unknown) => {
    if (m === "exit") return void queue.then(() => process.exit(0));
    const seconds = (m as { window?: number }).window;
    if (typeof seconds !== "number") return;
    queue = queue.then(async () => {
      const answer = await victimWindow(spec, seconds).then(
        (samples) => ({ samples }),
        (e: Error) => ({ error: e.message }),
      );
      await new Promise<void>((resolve) => process.send!(answer, () => resolve()));
    });
  });
  process.on("disconnect", () => process.exit(0));
  process.send!("ready");
}

if (require.main === module && process.env.ABUSE_VICTIM) victimMain(JSON.parse(process.env.ABUSE_VICTIM) as VictimSpec);
