/**
 * memory: does a neighbour scanning every expert push a victim tenant's experts out of the
 * worker's cache? (issue 10: per-tenant memory quotas and fair eviction, libs/cache.)
 *
 * One worker per phase (a fresh deployment each), batch 4, the `default` model,
 * HOT_CAPACITY_BYTES 160 MiB and WARM_CAPACITY_BYTES 200 MiB: neither holds the experts the
 * neighbour routes to (≈ 219 MB). (A first try with HOT at one token's worst case, ≈ 151 MB,
 * and batch 8 made no progress at all: 8 parked DEEP sequences need up to 8 × 24 experts HOT
 * at once, more than HOT holds, and their loads evicted each other's sessions for minutes.)
 *  - victim (weight 1, hotMemoryBytes / warmMemoryBytes 32 MiB): VICTIM_STREAMS lanes of FAST
 *    completions of MEMORY_VICTIM_TOKENS (4) tokens, each followed by MEMORY_VICTIM_PAUSE_MS
 *    (8000) of think time (its working set is the hot tier, ≈ 17 MB, within its quota and its
 *    share). Bursty on purpose: a victim decoding back to back keeps its experts the most
 *    recently used, so even a plain LRU never evicts them (smoke: 100 % hits under both);
 *    the damage a scan does shows when the victim's reuse interval is longer than the time
 *    the neighbour's loads take to cycle through HOT;
 *  - neighbour (weight 1, 128 MiB HOT / 160 MiB WARM): NEIGHBOUR_STREAMS DEEP completions at a
 *    time, back to back, every one a new two-byte prompt and seed at temperature 1, so its
 *    routes scan every expert of the hot, warm and cold tiers (≈ 219 MB, more than either
 *    capacity). One at a time with two-byte prompts because a prefill needs every expert its
 *    prompt's tokens route to HOT at once: with 8 (then 2) DEEP completions of ~50-byte prompts
 *    the worker made no progress at all (its loads evicted each other's sessions, 0 tokens in
 *    minutes, with PREFETCH on or off, fair or lru).
 * Phases: the victim alone (EXPERT_CACHE_EVICTION=fair), victim + neighbour (fair), victim +
 * neighbour (lru: the plain global-LRU baseline, no per-tenant quota enforced). Each phase
 * warms the victim alone for MEMORY_WARMUP_SECONDS, then measures for MEMORY_SECONDS (the
 * neighbour starts with the window).
 *
 * Read from the worker's Prometheus series (ADMIN key), deltas over the window:
 *  - the victim's hit rate: lite_expert_cache_uses_total{result="hit"} ÷ all its uses (a miss
 *    is its first use of an expert since that expert last became HOT);
 *  - lite_expert_cache_evictions_total{tenant=victim, role="suffered"}: evictions of entries
 *    the victim was charged for, whoever caused them (the victim's own role="caused" beside);
 *  - quota samples: lite_expert_cache_bytes{tenant, level} every SAMPLE_MS against each
 *    tenant's hotMemoryBytes / warmMemoryBytes.
 *
 * Targets: fair ÷ alone hit rate ≥ 0.9; 0 samples over quota with fair eviction; 0 evictions
 * of the victim's entries caused by the neighbour (shown by 0 suffered in the fair phase).
 */
import { ensureModel } from "@lite/model";
import { wsClient } from "@lite/testing";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";
import { bringUpLiveServices, sleep, startPhase, type LiveServices, type Phase } from "./lib/live-stack";
import { streamOne, type CompletionRequest } from "./lib/load";
import { counters, modelBytes, sampleQuotas, type Counters, type QuotaSamples } from "./lib/memory-probes";

const MODEL = "default";
const BATCH = 4;
const VICTIM_STREAMS = 2;
/** tokens per victim completion (MEMORY_VICTIM_TOKENS): fewer tokens, fewer hits after each miss */
const VICTIM_TOKENS = Number(process.env.MEMORY_VICTIM_TOKENS ?? 4);
const NEIGHBOUR_STREAMS = 1;
const NEIGHBOUR_TOKENS = 32;
const SAMPLE_MS = 250;
const MiB = 1024 * 1024;
const HOT_CAPACITY_BYTES = 160 * MiB;
const WARM_CAPACITY_BYTES = 200 * MiB;
/** how long past the window a victim completion may still run before it counts as unfinished */
const STRAGGLER_MS = 60000;
const VICTIM_QUOTA = { hot: 32 * MiB, warm: 32 * MiB };
const NEIGHBOUR_QUOTA = { hot: 128 * MiB, warm: 160 * MiB };

type PhaseName = "alone" | "fair" | "lru";

/** `lanes` lanes of completions `make(lane, i)`, one after another (after `pauseMs`), until `until`. */
async function streams(
  phase: Phase,
  tenant: Awaited<ReturnType<Phase["createTenant"]>>,
  lanes: number,
  make: (lane: number, i: number) => CompletionRequest,
  until: number,
  pauseMs: number,
) {
  const ws = wsClient(phase.url, tenant.key);
  let completions = 0;
  let tokens = 0;
  let errors = 0;
  let unfinished = 0;
  const deadline = AbortSignal.timeout(Math.ceil(Math.max(0, until - performance.now()) + STRAGGLER_MS));
  try {
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = 0; performance.now() < until && !deadline.aborted; i++) {
          const r = await streamOne(tenant.http, ws, make(lane, i), deadline);
          if (r.error) errors++;
          else if (deadline.aborted) unfinished++;
          else completions++;
          tokens += r.tokens;
          if (pauseMs > 0) await sleep(pauseMs);
        }
      }),
    );
  } finally {
    await ws.dispose();
  }
  return { completions, tokens, errors, unfinished };
}

/** A distinct printable two-byte prompt for each i (94² of them). */
function twoBytes(i: number): string {
  const h = (i * 2654435761) % 8836;
  return String.fromCharCode(33 + (h % 94), 33 + Math.floor(h / 94));
}

interface PhaseFigures {
  phase: PhaseName;
  eviction: "fair" | "lru";
  victimCompletions: number;
  victimErrors: number;
  /** victim completions still running STRAGGLER_MS after the window (left behind) */
  victimUnfinished: number;
  victimTokensPerSecond: number;
  victimUses: number;
  victimHits: number;
  victimMisses: number;
  hitRate: number;
  /** evictions of entries the victim was charged for (sole or shared, whoever caused them) */
  victimEvictionsSuffered: number;
  /** evictions the victim's own loads or quota caused */
  victimEvictionsCaused: number;
  victimLoads: number;
  neighbourLoads: number;
  neighbourEvictionsCaused: number;
  neighbourTokens: number;
  neighbourCompletions: number;
  neighbourUnfinished: number;
  quota: QuotaSamples;
}

interface RunConfig {
  hotCapacityBytes: number;
  warmCapacityBytes: number;
  seconds: number;
  warmupSeconds: number;
  pauseMs: number;
  /** the workers' PREFETCH (MEMORY_PREFETCH, default on) */
  prefetch: "on" | "off";
}

async function runPhase(ctx: BenchContext, live: LiveServices, cfg: RunConfig, name: PhaseName) {
  const eviction = name === "lru" ? "lru" : "fair";
  const phase = await startPhase(ctx, live, {
    mode: "fair",
    workers: 1,
    batchSize: BATCH,
    model: MODEL,
    workerEnv: {
      HOT_CAPACITY_BYTES: String(cfg.hotCapacityBytes),
      WARM_CAPACITY_BYTES: String(cfg.warmCapacityBytes),
      EXPERT_CACHE_EVICTION: eviction,
      PREFETCH: cfg.prefetch,
    },
  });
  try {
    const victim = await phase.createTenant(`victim-${name}`, 1);
    const neighbour = await phase.createTenant(`neighbour-${name}`, 1);
    for (const [t, q] of [
      [victim, VICTIM_QUOTA],
      [neighbour, NEIGHBOUR_QUOTA],
    ] as const)
      await phase.admin.ok(`mutation($t: ID!, $q: QuotaInput!) { setQuota(tenantId: $t, input: $q) { id } }`, {
        t: t.id,
        q: { hotMemoryBytes: String(q.hot), warmMemoryBytes: String(q.warm) },
      });
    const fast =
      (tag: string) =>
      (lane: number, i: number): CompletionRequest => ({
        prompt: `victim ${tag}.${lane}.${i}: tell me more`,
        maxTokens: VICTIM_TOKENS,
        mode: "FAST",
        seed: `${tag}.${lane}.${i}`,
        temperature: 0.8,
      });
    ctx.log(`memory/${name}: victim warms up alone for ${cfg.warmupSeconds} s`);
    await streams(phase, victim, VICTIM_STREAMS, fast("w"), performance.now() + cfg.warmupSeconds * 1000, cfg.pauseMs);
    const c0 = await counters(phase, victim.id, neighbour.id);
    const sampler = sampleQuotas(
      phase,
      {
        victim: { id: victim.id, quota: VICTIM_QUOTA },
        neighbour: { id: neighbour.id, quota: NEIGHBOUR_QUOTA },
      },
      SAMPLE_MS,
    );
    const deep = (lane: number, i: number): CompletionRequest => ({
      // two bytes: a prompt's prefill needs every expert its tokens route to HOT at once
      prompt: twoBytes(lane * 7919 + i),
      maxTokens: NEIGHBOUR_TOKENS,
      mode: "DEEP",
      seed: `n${lane}.${i}`,
      temperature: 1,
    });
    const scanning = name !== "alone";
    ctx.log(`memory/${name}: victim streams for ${cfg.seconds} s${scanning ? " while the neighbour scans" : ""}`);
    const started = performance.now();
    const until = started + cfg.seconds * 1000;
    const n = scanning ? streams(phase, neighbour, NEIGHBOUR_STREAMS, deep, until, 0) : undefined;
    const v = await streams(phase, victim, VICTIM_STREAMS, fast("m"), until, cfg.pauseMs);
    const elapsed = (performance.now() - started) / 1000;
    const c1 = await counters(phase, victim.id, neighbour.id);
    const quota = await sampler.stop();
    const nb = await n;
    const d = (k: keyof Counters) => c1[k] - c0[k];
    const uses = d("hits") + d("misses");
    return {
      phase: name,
      eviction,
      victimCompletions: v.completions,
      victimErrors: v.errors,
      victimUnfinished: v.unfinished,
      victimTokensPerSecond: v.tokens / elapsed,
      victimUses: uses,
      victimHits: d("hits"),
      victimMisses: d("misses"),
      hitRate: uses > 0 ? d("hits") / uses : NaN,
      victimEvictionsSuffered: d("suffered"),
      victimEvictionsCaused: d("caused"),
      victimLoads: d("victimLoads"),
      neighbourLoads: d("neighbourLoads"),
      neighbourEvictionsCaused: d("neighbourCaused"),
      neighbourTokens: d("neighbourTokens"),
      neighbourCompletions: nb?.completions ?? 0,
      neighbourUnfinished: nb?.unfinished ?? 0,
      quota,
    } satisfies PhaseFigures;
  } finally {
    await phase.stop();
  }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

export const bench: Benchmark = {
  name: "memory",
  description:
    "A victim tenant's expert hit rate while a neighbour scans every expert, ÷ its hit rate alone, with fair eviction and with a plain global-LRU baseline; samples over quota; evictions of the victim's entries.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const seconds = Number(process.env.MEMORY_SECONDS ?? 60);
    const warmupSeconds = Number(process.env.MEMORY_WARMUP_SECONDS ?? 10);
    const pauseMs = Number(process.env.MEMORY_VICTIM_PAUSE_MS ?? 8000);
    const prefetch = process.env.MEMORY_PREFETCH === "off" ? "off" : "on";
    await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    const model = modelBytes(ctx.modelDir, MODEL);
    const hotCapacityBytes = HOT_CAPACITY_BYTES;
    const warmCapacityBytes = WARM_CAPACITY_BYTES;
    const scanBytes = model.tiers.filter((t) => !t.restricted).reduce((a, t) => a + t.bytes, 0);
    const victimBytes = model.tiers[0].bytes;
    if (model.tokenBytes > hotCapacityBytes || scanBytes <= warmCapacityBytes || victimBytes > VICTIM_QUOTA.hot)
      throw new Error(
        `memory: the ${MODEL} model does not fit the scenario (one token ${model.tokenBytes} B must fit HOT ${hotCapacityBytes} B; the scan ${scanBytes} B must exceed WARM ${warmCapacityBytes} B; the victim's tier ${victimBytes} B must fit its quota ${VICTIM_QUOTA.hot} B)`,
      );
    const cfg: RunConfig = { hotCapacityBytes, warmCapacityBytes, seconds, warmupSeconds, pauseMs, prefetch };
    const live = await bringUpLiveServices(ctx);
    const phases: PhaseFigures[] = [];
    try {
      for (const name of ["alone", "fair", "lru"] as const) phases.push(await runPhase(ctx, live, cfg, name));
    } finally {
      await live.stop();
    }
    const [alone, fair, lru] = phases;
    const fairRatio = fair.hitRate / alone.hitRate;
    const lruRatio = lru.hitRate / alone.hitRate;
    const overFair = alone.quota.over + fair.quota.over;
    const hitMet = fairRatio >= 0.9;
    const quotaMet = overFair === 0 && alone.quota.failed + fair.quota.failed === 0;
    const evictionsMet = fair.victimEvictionsSuffered === 0;
    const row = (p: PhaseFigures) =>
      `| ${p.phase} | ${p.eviction} | ${p.victimCompletions}${p.victimErrors + p.victimUnfinished > 0 ? ` (${p.victimErrors} failed, ${p.victimUnfinished} unfinished)` : ""} | ${p.victimTokensPerSecond.toFixed(0)} | ${p.victimUses} | ${p.victimMisses} | ${pct(p.hitRate)} | ${p.victimEvictionsSuffered} / ${p.victimEvictionsCaused} | ${p.neighbourTokens} | ${p.neighbourLoads} | ${p.neighbourEvictionsCaused} | ${p.quota.samples} (${p.quota.failed} failed) | ${p.quota.over} | ${mb(p.quota.max.victim.HOT)} / ${mb(p.quota.max.victim.WARM)} | ${mb(p.quota.max.neighbour.HOT)} / ${mb(p.quota.max.neighbour.WARM)} |`;
    const tiers = model.tiers
      .map((t) => `${t.id} ${t.experts} experts ${mb(t.bytes)}${t.restricted ? " (restricted, not used)" : ""}`)
      .join(", ");
    const summary = [
      `### memory`,
      ``,
      `One worker, batch ${BATCH}, PREFETCH=${prefetch}, \`${MODEL}\` model (expert files: ${tiers}); HOT_CAPACITY_BYTES ${mb(hotCapacityBytes)} (one token's worst case is ${mb(model.tokenBytes)}), WARM_CAPACITY_BYTES ${mb(warmCapacityBytes)}; the neighbour's DEEP routes span ${mb(scanBytes)}, more than either. Victim (weight 1, quota ${mb(VICTIM_QUOTA.hot)} HOT / ${mb(VICTIM_QUOTA.warm)} WARM): ${VICTIM_STREAMS} FAST completions of ${VICTIM_TOKENS} tokens at a time (temperature 0.8${pauseMs > 0 ? `, ${pauseMs} ms between completions` : ", back to back"}), its working set the hot tier (${mb(victimBytes)}). Neighbour (weight 1, quota ${mb(NEIGHBOUR_QUOTA.hot)} HOT / ${mb(NEIGHBOUR_QUOTA.warm)} WARM): ${NEIGHBOUR_STREAMS} DEEP completion of ${NEIGHBOUR_TOKENS} tokens at a time, back to back, each a new two-byte prompt and seed at temperature 1 (longer prompts or more at once and its prefill needs more experts HOT at once than its quota holds: no progress). Each phase on a fresh deployment: the victim warms up alone for ${warmupSeconds} s, then ${seconds} s are measured; ${ctx.cores} cores.`,
      ``,
      `Hit rate: the victim's \`lite_expert_cache_uses_total\` hits ÷ uses in the window (a miss is its first use of an expert since it last became HOT). Evictions suffered: \`lite_expert_cache_evictions_total{role="suffered"}\` of the victim, i.e. evictions of entries it was charged for, its sole entries and entries it shares with the neighbour alike, whoever caused them; "caused" are those its own loads or quota caused, so with 0 caused every suffered eviction is the neighbour's doing. Quota samples: \`lite_expert_cache_bytes{tenant,level}\` every ${SAMPLE_MS} ms; a sample is over when any tenant's bytes in any level pass its quota (the lru baseline enforces none).`,
      ``,
      `| phase | eviction | victim completions | victim tokens/s | victim uses | misses | hit rate | victim evictions suffered / caused | neighbour tokens | neighbour loads | neighbour evictions caused | quota samples | over quota | victim max HOT / WARM | neighbour max HOT / WARM |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      ...phases.map(row),
      ``,
      `Victim hit rate with the neighbour ÷ alone: fair ${fairRatio.toFixed(3)}, plain LRU ${lruRatio.toFixed(3)}.`,
      ``,
      `Targets (issue 10): fair ÷ alone ≥ 0.9: ${hitMet ? "met" : "NOT met"} (${fairRatio.toFixed(3)}); 0 samples over quota with fair eviction: ${quotaMet ? "met" : "NOT met"} (${overFair} of ${alone.quota.samples + fair.quota.samples}); 0 evictions of the victim's entries during the fair phase: ${evictionsMet ? "met" : "NOT met"} (${fair.victimEvictionsSuffered} suffered, ${fair.victimEvictionsCaused} caused by itself). Plain LRU beside it: ${lru.victimEvictionsSuffered} suffered, ${lru.quota.over} samples over quota.`,
    ].join("\n");
    return {
      summary,
      seconds,
      warmupSeconds,
      victimPauseMs: pauseMs,
      victimTokens: VICTIM_TOKENS,
      prefetch,
      model: MODEL,
      batch: BATCH,
      hotCapacityBytes,
      warmCapacityBytes,
      scanBytes,
      victimWorkingSetBytes: victimBytes,
      quotas: { victim: VICTIM_QUOTA, neighbour: NEIGHBOUR_QUOTA },
      alone,
      fair,
      lru,
      fairRatio,
      lruRatio,
      targetMet: hitMet && quotaMet && evictionsMet,
    };
  },
};
