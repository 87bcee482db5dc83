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
 *
 * Warm start (the default, `warmupRounds` > 0): before the start, the measured tenants run
 * short DEEP completions until the timing defence pads no more first uses (see warmUp).
 * A tenant's first use of each expert on each worker is held back as long as a load
 * (libs/model timing-defence.ts); on a cold start those pads, three times as many on three
 * workers, park most held sequences for the whole window, every runnable one steps, and
 * who is served is decided by which sequences happen to be parked, not by the scheduler
 * (measured: 3 workers cold 15-66 % share error, with TIMING_DEFENCE=off 0.9 %). The
 * cold start is still measured (`warmupRounds` 0) and reported beside, outside the target.
 */
import * as path from "node:path";
import type { Client } from "graphql-ws";
import { describeTiers, readManifest } from "@lite/manifest";
import { parseTenantCounter } from "@lite/telemetry";
import {
  CREATE_COMPLETION,
  TEST_ADMIN_KEY,
  collectTokens,
  scrapeWorkerMetrics,
  wsClient,
  type GqlHttp,
} from "@lite/testing";
import type { BenchContext } from "./bench-types";
import { sleep, startPhase, type LiveServices, type Phase } from "./live-stack";
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
  /** most warm-up rounds before the start; 0: none (a cold start: first uses are padded in the window) */
  warmupRounds: number;
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
  /** ms from the start until the last createCompletion answered (a subscription's first events wait about as long: the API is busy with the creates) */
  createsDoneMs: number;
  createErrors: number;
  streamErrors: number;
  /** no warm-up was asked for: a cold start (reported, not held to the target) */
  cold: boolean;
  /** warm-up rounds run before the start, and the first uses the timing defence padded in them */
  warmupRounds: number;
  warmupPaddedFirstUses: number;
  /** first uses padded from the start to the end of the window (0: the window ran warm) */
  windowPaddedFirstUses: number;
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
  /** when the last createCompletion answered */
  createsDoneAtMs = 0;
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
  rec.createsDoneAtMs = Math.max(rec.createsDoneAtMs, performance.now());
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

/** Warm-up completions: short, DEEP (hot, warm and cold experts: every expert FAST and BALANCED use too). */
const WARMUP_TOKENS = 32;
const WARMUP_PER_WEIGHT = 2;

/** Per tenant id: a counter of the workers' /metrics, summed over the workers. */
async function tenantCounter(phase: Phase, name: string): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const url of phase.metricsUrls) {
    const text = await scrapeWorkerMetrics(url, TEST_ADMIN_KEY);
    for (const [t, n] of parseTenantCounter(text, name)) total.set(t, (total.get(t) ?? 0) + n);
  }
  return total;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/**
 * Before the start, the measured tenants themselves run rounds of short DEEP completions
 * (WARMUP_PER_WEIGHT × weight × workers each, so their virtual times advance alike and none
 * enters the start with a debt) until a round has the timing defence pad no first use on
 * any worker, or `maxRounds`. A tenant's first use of each expert on each worker is padded
 * as long as a load (libs/model timing-defence.ts): a cold start of every (tenant, expert,
 * worker), three times as many on three workers, during which most held sequences wait and
 * every runnable one steps, so no scheduler chooses who is served. Returns the rounds run
 * and the first uses padded in them.
 */
async function warmUp(
  ctx: BenchContext,
  phase: Phase,
  tenants: Array<{ http: GqlHttp }>,
  clients: Client[],
  opts: ClientPhaseOptions,
): Promise<{ rounds: number; padded: number }> {
  let padded = 0;
  for (let round = 1; round <= opts.warmupRounds; round++) {
    const before = sum(await tenantCounter(phase, "lite_padded_first_uses_total"));
    await Promise.all(
      tenants.flatMap((t, k) =>
        Array.from({ length: WARMUP_PER_WEIGHT * opts.weights[k] * opts.workers }, async (_, i) => {
          const r = await t.http.request<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
            input: {
              prompt: `Tenant ${k} warming up, ${round}.${i}: once upon a time`,
              maxTokens: WARMUP_TOKENS,
              mode: "DEEP",
              temperature: 0.8,
            },
          });
          const id = r.data?.createCompletion?.id;
          if (!id) throw new Error(`warm-up createCompletion: ${r.status} ${r.errors?.[0]?.message}`);
          await collectTokens(clients[k], id, 0);
        }),
      ),
    );
    const added = sum(await tenantCounter(phase, "lite_padded_first_uses_total")) - before;
    padded += added;
    ctx.log(`fairness/client ${opts.workers}w: warm-up round ${round}: ${added} first uses padded`);
    if (added === 0) return { rounds: round, padded };
  }
  return { rounds: opts.warmupRounds, padded };
}

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
): Omit<
  ClientFairnessFigures,
  "generatedTokens" | "cold" | "warmupRounds" | "warmupPaddedFirstUses" | "windowPaddedFirstUses"
> {
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
    createsDoneMs: rec.createsDoneAtMs - startMs,
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
    const warm = await warmUp(ctx, phase, tenants, clients, opts);
    const tokensBefore = await phase.tokensByTenant();
    const paddedBefore = sum(await tenantCounter(phase, "lite_padded_first_uses_total"));
    const plan = planRequests(opts.weights, opts.perWeight);
    const rec = new Recorder(opts.weights, opts.perWeight);
    ctx.log(
      `fairness/client ${opts.workers}w${opts.warmupRounds === 0 ? " cold" : ""}: ${plan.length} completions at once, up to ${opts.seconds} s`,
    );
    const startMs = performance.now();
    for (const r of plan)
      createAndStream(tenants[r.tenant].http, clients[r.tenant], r, costs, rec).catch((e: Error) => {
        if (!rec.stopped) rec.fatal ??= e;
      });
    const endMs = await waitForWindowEnd(rec, startMs, opts.seconds);
    rec.stopped = true;
    for (const m of rec.errorSamples) ctx.log(`fairness/client ${opts.workers}w: ${m}`);
    const generated = await phase.tokensByTenant();
    const paddedAfter = sum(await tenantCounter(phase, "lite_padded_first_uses_total"));
    return {
      ...figures(opts, rec, startMs, endMs, endMs === rec.drainedAtMs ? "drained" : "time"),
      generatedTokens: tenants.map((t) => (generated.get(t.id) ?? 0) - (tokensBefore.get(t.id) ?? 0)),
      cold: opts.warmupRounds === 0,
      warmupRounds: warm.rounds,
      warmupPaddedFirstUses: warm.padded,
      windowPaddedFirstUses: paddedAfter - paddedBefore,
    };
  } finally {
    for (const c of clients) await c.dispose();
    await phase.stop();
  }
}
