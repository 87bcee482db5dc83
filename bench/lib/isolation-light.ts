/**
 * The light tenant of bench/isolation.bench.ts, in a small process of its own (forked once
 * with ISOLATION_LIGHT set, asked for one warm-up or one window at a time), so that its
 * times to first token are what a lean client sees. In the bench's own process, which also
 * sends the heavy flood and holds the whole bench, they included that process's pauses:
 * event-loop delays of 15–20 ms under the flood, once 49 ms (a 26 ms GC). This file imports
 * node's modules, graphql-ws and ws only; the parent passes the URL, the key and the two
 * documents.
 *
 * Protocol (IPC, JSON-serialized): `{ warm: rounds }` → `{ warmed: n }`; `{ window: seconds }`
 * → `{ results, client }` (each request's create time and TTFT, and this process's own GC
 * and event-loop figures over the window).
 */
import { setMaxListeners } from "node:events";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { serveParent } from "./client-process";
import { gcMeter, request, type ClientProcess } from "./lean-client";

/** light requests per second: 120 in a 30-s phase, so that p99 is not simply the slowest */
export const LIGHT_PER_SECOND = 4;
export const LIGHT_MAX_TOKENS = 16;

export interface LightSpec {
  /** http://host:port/graphql */
  url: string;
  key: string;
  /** the `createCompletion` mutation and the `completionTokens` subscription (from @lite/testing) */
  createCompletion: string;
  tokensSubscription: string;
}

export interface LightResult {
  /** ms from the createCompletion request to the first token event; Infinity if none arrived */
  ttftMs: number;
  tokens: number;
  /** ms the createCompletion request took */
  createMs: number;
  error?: string;
}

export interface LightWindow {
  results: LightResult[];
  client: ClientProcess;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function wsClient(spec: LightSpec): Client {
  return createClient({
    url: spec.url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${spec.key}` },
    lazy: true,
    lazyCloseTimeout: 0,
    retryAttempts: 0,
  });
}

/** One completion: create it, stream it to its end (or until `signal`), time the first token. */
async function streamOne(
  spec: LightSpec,
  ws: Client,
  input: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<LightResult & { startedAt: number }> {
  const startedAt = performance.now();
  const res = await request(spec.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${spec.key}` },
    body: JSON.stringify({ query: spec.createCompletion, variables: { input } }),
  });
  const createMs = performance.now() - startedAt;
  const body = JSON.parse(res.body) as { data?: { createCompletion?: { id: string } }; errors?: { message: string }[] };
  const id = body.data?.createCompletion?.id;
  if (!id)
    return { ttftMs: Infinity, tokens: 0, startedAt, createMs, error: `${res.status} ${body.errors?.[0]?.message}` };
  let first = Infinity;
  let tokens = 0;
  const error = await new Promise<string | undefined>((resolve) => {
    signal?.addEventListener("abort", () => resolve(undefined), { once: true });
    ws.subscribe<{ completionTokens: { done: boolean } }>(
      { query: spec.tokensSubscription, variables: { id, from: 0 } },
      {
        next: (msg) => {
          if (msg.errors?.length) return resolve(msg.errors[0].message);
          const e = msg.data?.completionTokens;
          if (!e) return;
          if (e.done) return resolve(undefined);
          if (first === Infinity) first = performance.now() - startedAt;
          tokens++;
        },
        error: (err) => resolve(err instanceof Error ? err.message : JSON.stringify(err)),
        complete: () => resolve(undefined),
      },
    );
  });
  return { ttftMs: first, tokens, startedAt, createMs, ...(error ? { error } : {}) };
}

const lightInput = (i: number | string, prompt: string) => ({
  prompt,
  maxTokens: LIGHT_MAX_TOKENS,
  mode: "FAST",
  seed: String(i),
  temperature: 0.8,
});

/** Rounds of 4 requests at once, to the end: the worker's sessions and the tenant's experts' first uses. */
async function warm(spec: LightSpec, rounds: number): Promise<number> {
  const ws = wsClient(spec);
  try {
    for (let round = 0; round < rounds; round++)
      await Promise.all(
        [0, 1, 2, 3].map((i) => streamOne(spec, ws, lightInput(`w${round}-${i}`, `warm ${round}-${i}: hello`))),
      );
  } finally {
    await ws.dispose();
  }
  return rounds * 4;
}

/**
 * LIGHT_PER_SECOND requests/s for `seconds`, open loop. A request still without a token 5 s
 * after the last one was sent counts with its wait so far (a lower bound).
 */
async function lightWindow(spec: LightSpec, seconds: number): Promise<LightWindow> {
  // this process's garbage from before is collected now, so a pause in the window is its own
  (globalThis as { gc?: () => void }).gc?.();
  const meter = gcMeter();
  const ws = wsClient(spec);
  const abort = new AbortController();
  setMaxListeners(1000, abort.signal); // one listener per request
  const runs: Promise<LightResult & { startedAt: number }>[] = [];
  const start = performance.now();
  try {
    for (let i = 0; i < seconds * LIGHT_PER_SECOND; i++) {
      await sleep(Math.max(0, start + (i * 1000) / LIGHT_PER_SECOND - performance.now()));
      runs.push(streamOne(spec, ws, lightInput(i, `light request ${i}: hello`), abort.signal));
    }
    await Promise.race([Promise.all(runs), sleep(5000)]);
    const end = performance.now();
    abort.abort();
    const results = (await Promise.all(runs)).map(({ startedAt, ...r }) =>
      r.ttftMs === Infinity ? { ...r, ttftMs: end - startedAt } : r,
    );
    return { results, client: meter() };
  } finally {
    await ws.dispose();
  }
}

function lightMain(spec: LightSpec) {
  serveParent(async (m) => {
    const { warm: rounds, window: seconds } = m as { warm?: number; window?: number };
    if (typeof rounds === "number") return { warmed: await warm(spec, rounds) };
    if (typeof seconds === "number") return lightWindow(spec, seconds);
    throw new Error(`neither warm nor window: ${JSON.stringify(m)}`);
  });
}

if (require.main === module && process.env.ISOLATION_LIGHT)
  lightMain(JSON.parse(process.env.ISOLATION_LIGHT) as LightSpec);
