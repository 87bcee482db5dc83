/**
 * The victim of bench/abuse.bench.ts, in a small process of its own (the bench forks this
 * file once with ABUSE_VICTIM set and asks it for one window at a time), so that the
 * victim's latencies are what a lean client sees. In the bench's own process they included
 * that process's garbage-collection pauses (up to 69 ms in a window): its heap holds the
 * whole bench (the stack's handles, the model manifest, Prisma, the results). This file
 * imports nothing but node's own modules (through lean-client.ts); the parent passes the URL, the key and the
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
import { serveParent } from "./client-process";
import { gcMeter, request, type ClientProcess } from "./lean-client";

/** the victim's own process over a window (lean-client.ts) */
export type VictimProcess = ClientProcess;

const ME = "query { me { role } }";
export const CREATE_EVERY_MS = 100;

export interface VictimSpec {
  /** http://host:port/graphql */
  url: string;
  key: string;
  /** the `createCompletion` mutation document (from @lite/testing, which this process does not load) */
  createCompletion: string;
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

/** Child entry: a window per `{ window: seconds }` message, each answered with `{ samples }`. */
function victimMain(spec: VictimSpec) {
  serveParent(async (m) => {
    const seconds = (m as { window?: number }).window;
    if (typeof seconds !== "number") throw new Error(`not a window: ${JSON.stringify(m)}`);
    return { samples: await victimWindow(spec, seconds) };
  });
}

if (require.main === module && process.env.ABUSE_VICTIM) victimMain(JSON.parse(process.env.ABUSE_VICTIM) as VictimSpec);
