/**
 * The client-side half of the fairness bench: tenants of the given weights each create
 * `perWeight × weight` completions at once (all requests sent in one synchronous loop,
 * interleaved across tenants so none is first by construction), of mixed lengths (16..512 tokens) and modes (FAST,
 * BALANCED, DEEP: different cost weights), each subscribed over graphql-ws from its first
 * token; every token is timestamped when its subscriber receives it and counts its
 * completion's cost weight (the TierSet's, from the model manifest). The window runs from
 * the start until `seconds` after the first token any client received (a cold start does not
 * eat the window), or until the first tenant stops being backlogged, whichever comes first:
 * a tenant is backlogged while one of its completions is still waiting (no token received
 * yet); past that its running completions alone may not fill its share, and no scheduler
 * can help it.
 */
import * as path from "node:path";
import type { Client } from "graphql-ws";
import { describeTiers, readManifest } from "@lite/manifest";
import { CREATE_COMPLETION, collectTokens, wsClient, type GqlHttp } from "@lite/testing";
import type { BenchContext } from "./bench-types";
import { sleep, startPhase, type LiveServices } from "./live-stack";
import { maxServiceLag, receivedShares, type ReceivedToken, type ServiceLag, type TenantShare } from "./service-lag";

export const CLIENT_LENGTHS = [16, 64, 128, 256, 512];
export const CLIENT_MODES = ["FAST", "BALANCED", "DEEP"] as const;

export interface ClientPhaseOptions {
  weights: number[];
  workers: number;
  batchSize: number;
  model: string;
  seconds: number;
  perWeight: number;
}

export interface ClientFairnessFigures {
  workers: number;
  windowSeconds: number;
  /** seconds from the first token to the end of the window */
  serviceSeconds: number;
  /** why the window ended: the time limit, or the first tenant with nothing left waiting */
  windowEnd: "time" | "drained";
  tokensPerSecond: number;
  costWeightedTokensPerSecond: number;
  tenants: TenantShare[];
  maxRelativeShareError: number;
  maxLag: ServiceLag;
  /** maxTokens × costWeight of the costliest completion created */
  largestRequestCost: number;
  /** maxLag.lag ÷ largestRequestCost (target ≤ 2) */
  lagInLargestRequests: number;
  /** per tenant: tokens the workers had generated when the window ended (their counters) */
  generatedTokens: number[];
  /** ms from the start to the first token any client received */
  firstTokenMs: number;
  createErrors: number;
  streamErrors: number;
}

interface PlannedRequest {
  tenant: number;
  maxTokens: number;
  mode: (typeof CLIENT_MODES)[number];
}

/**
 * Every tenant's requests, interleaved by their position within the tenant's own list. Modes
 * cycle every 3 requests and lengths every 5, so every 15 requests hold each (length, mode)
 * pair once and every tenant's mix is the same all along its list.
 */
export function planRequests(weights: readonly number[], perWeight: number): PlannedRequest[] {
  const all: Array<PlannedRequest & { order: number }> = [];
  weights.forEach((w, k) => {
    const n = perWeight * w;
    for (let i = 0; i < n; i++) {
      const maxTokens = CLIENT_LENGTHS[(i + k) % CLIENT_LENGTHS.length];
      const mode = CLIENT_MODES[i % CLIENT_MODES.length];
      all.push({ tenant: k, maxTokens, mode, order: (i + 0.5) / n });
    }
  });
  return all.sort((a, b) => a.order - b.order || a.tenant - b.tenant).map(({ order: _, ...r }) => r);
}

/** Tier id → cost weight, from the model's manifest (what the API registered). */
function tierCosts(ctx: BenchContext, model: string): Map<string, number> {
  const { manifest } = readManifest(path.join(ctx.modelDir, model));
  return new Map(describeTiers(manifest).map((t) => [t.id, t.costWeight]));
}

class Recorder {
  readonly tokens: ReceivedToken[] = [];
  /** per tenant: completions not started yet (no token received, not ended) */
  readonly waiting: number[];
  /** when the first tenant stopped being backlogged (nothing of its own left waiting) */
  drainedAtMs = Infinity;
  firstTokenAtMs = Infinity;
  largestRequestCost = 0;
  createErrors = 0;
  streamErrors = 0;
  stopped = false;
  /** an error of the bench itself (not of the stack): ends the window and fails the bench */
  fatal: Error | null = null;

  constructor(weights: readonly number[], perWeight: number) {
    this.waiting = weights.map((w) => w * perWeight);
  }

  /** the first few error messages, for the log */
  readonly errorSamples: string[] = [];

  error(message: string): void {
    if (this.errorSamples.length < 3) this.errorSamples.push(message);
  }

  /** a completion's first token, or its end if it streamed none */
  started(tenant: number, atMs: number): void {
    this.firstTokenAtMs = Math.min(this.firstTokenAtMs, atMs);
    if (--this.waiting[tenant] === 0) this.drainedAtMs = Math.min(this.drainedAtMs, atMs);
  }

  failed(): void {
    if (!this.stopped) this.streamErrors++;
  }
}

async function createAndStream(
  http: GqlHttp,
  ws: Client,
  req: PlannedRequest,
  costs: Map<string, number>,
  rec: Recorder,
): Promise<void> {
  const input = { prompt: `Tenant ${req.tenant}: once upon a time`, maxTokens: req.maxTokens, mode: req.mode };
  const r = await http.request<{ createCompletion: { id: string; tierSet: string[] } }>(CREATE_COMPLETION, {
    input: { ...input, temperature: 0.8 },
  });
  const created = r.data?.createCompletion;
  if (!created) {
    rec.createErrors++;
    rec.error(`createCompletion: ${r.status} ${r.errors?.[0]?.message}`);
    return rec.started(req.tenant, performance.now());
  }
  const cost = created.tierSet.reduce((a, id) => {
    const c = costs.get(id);
    if (c === undefined) throw new Error(`tier ${id} of ${created.id} is not in the model manifest`);
    return a + c;
  }, 0);
  rec.largestRequestCost = Math.max(rec.largestRequestCost, req.maxTokens * cost);
  let started = false;
  const start = (atMs: number) => {
    if (!started) rec.started(req.tenant, atMs);
    started = true;
  };
  await collectTokens(ws, created.id, 0, (e, atMs) => {
    start(atMs);
    if (!e.done) rec.tokens.push({ atMs, tenant: req.tenant, cost });
  }).catch((e: Error) => {
    if (!rec.stopped) rec.error(`stream of ${created.id}: ${e.message}`);
    rec.failed();
    start(performance.now());
  });
}

const FIRST_TOKEN_TIMEOUT_MS = 120_000;

/** `seconds` after the first token, or when the first tenant has nothing left waiting. */
async function waitForWindowEnd(rec: Recorder, startMs: number, seconds: number): Promise<number> {
  const limitMs = () => rec.firstTokenAtMs + seconds * 1000;
  while (performance.now() < limitMs() && rec.drainedAtMs === Infinity && !rec.fatal) {
    if (rec.firstTokenAtMs === Infinity && performance.now() - startMs > FIRST_TOKEN_TIMEOUT_MS)
      rec.fatal = new Error(`no token received within ${FIRST_TOKEN_TIMEOUT_MS / 1000} s of the start`);
    await sleep(50);
  }
  if (rec.fatal) throw rec.fatal;
  return Math.min(limitMs(), rec.drainedAtMs);
}

function figures(
  opts: ClientPhaseOptions,
  rec: Recorder,
  startMs: number,
  endMs: number,
  windowEnd: "time" | "drained",
): Omit<ClientFairnessFigures, "generatedTokens"> {
  const tenants = receivedShares(rec.tokens, opts.weights, startMs, endMs);
  const maxLag = maxServiceLag(rec.tokens, opts.weights, startMs, endMs);
  const serviceSeconds = (endMs - rec.firstTokenAtMs) / 1000;
  return {
    workers: opts.workers,
    windowSeconds: (endMs - startMs) / 1000,
    serviceSeconds,
    windowEnd,
    tokensPerSecond: tenants.reduce((a, t) => a + t.tokens, 0) / serviceSeconds,
    costWeightedTokensPerSecond: tenants.reduce((a, t) => a + t.costWeightedTokens, 0) / serviceSeconds,
    tenants,
    maxRelativeShareError: Math.max(...tenants.map((t) => t.relativeError)),
    maxLag,
    largestRequestCost: rec.largestRequestCost,
    lagInLargestRequests: maxLag.lag / rec.largestRequestCost,
    firstTokenMs: rec.firstTokenAtMs - startMs,
    createErrors: rec.createErrors,
    streamErrors: rec.streamErrors,
  };
}

/** One fair-scheduling phase on `workers` workers, measured at the clients. */
export async function runClientPhase(
  ctx: BenchContext,
  live: LiveServices,
  opts: ClientPhaseOptions,
): Promise<ClientFairnessFigures> {
  const phase = await startPhase(ctx, live, {
    mode: "fair",
    workers: opts.workers,
    batchSize: opts.batchSize,
    model: opts.model,
    // the model loaded before the start (each worker would load it on its first job, holding
    // the jobs it took meanwhile: a cold start, not scheduling)
    workerEnv: { WORKER_PRELOAD_MODELS: opts.model },
    // every tenant streams all its completions at once over one WebSocket
    apiEnv: {
      WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: "10000",
      WS_SUBSCRIBES_PER_SECOND: "100000",
      WS_SUBSCRIBE_BURST: "100000",
    },
  });
  const clients: Client[] = [];
  try {
    const tenants = await Promise.all(opts.weights.map((w) => phase.createTenant(`cfair${opts.workers}-w${w}`, w)));
    for (const t of tenants) clients.push(wsClient(phase.url, t.key));
    const costs = tierCosts(ctx, opts.model);
    const plan = planRequests(opts.weights, opts.perWeight);
    const rec = new Recorder(opts.weights, opts.perWeight);
    ctx.log(`fairness/client ${opts.workers}w: ${plan.length} completions at once, up to ${opts.seconds} s`);
    const startMs = performance.now();
    for (const r of plan)
      createAndStream(tenants[r.tenant].http, clients[r.tenant], r, costs, rec).catch((e: Error) => {
        if (!rec.stopped) rec.fatal ??= e;
      });
    const endMs = await waitForWindowEnd(rec, startMs, opts.seconds);
    rec.stopped = true;
    for (const m of rec.errorSamples) ctx.log(`fairness/client ${opts.workers}w: ${m}`);
    const generated = await phase.tokensByTenant();
    return {
      ...figures(opts, rec, startMs, endMs, endMs === rec.drainedAtMs ? "drained" : "time"),
      generatedTokens: tenants.map((t) => generated.get(t.id) ?? 0),
    };
  } finally {
    for (const c of clients) await c.dispose();
    await phase.stop();
  }
}
