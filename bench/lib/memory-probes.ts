/**
 * What the memory bench reads of a phase (bench/memory.bench.ts): the model's expert bytes and
 * one token's working set, the workers' expert-cache series (hits, misses, evictions, loads,
 * bytes per tenant and level) scraped from /metrics, and a poller of those bytes against the
 * tenants' quotas.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { scrapeWorkerMetrics, TEST_ADMIN_KEY } from "@lite/testing";
import { sleep, type Phase } from "./live-stack";

export type Level = "HOT" | "WARM";

/** A tenant's hotMemoryBytes and warmMemoryBytes. */
export interface CacheQuota {
  hot: number;
  warm: number;
}

export interface ModelBytes {
  /** per tier id: experts, their total bytes, restricted */
  tiers: { id: string; experts: number; bytes: number; restricted: boolean }[];
  /** one token's worst-case HOT bytes (libs/cache working-set.ts): the smallest capacity the worker accepts */
  tokenBytes: number;
}

export interface Manifest {
  architecture: { layers: number };
  routing: { tierTopK: number };
  tiers: {
    id: string;
    restricted: boolean;
    routing: { groupTopK: number; expertTopK: number };
    experts: string[][];
  }[];
}

/** The expert files' real sizes, and one token's working set computed as working-set.ts does. */
export function modelBytes(modelDir: string, modelName: string): ModelBytes {
  const root = path.join(modelDir, modelName);
  const m = JSON.parse(fs.readFileSync(path.join(root, "manifest.json"), "utf8")) as Manifest;
  const sizes = m.tiers.map((t) => t.experts.flat().map((f) => fs.statSync(path.join(root, f)).size));
  const perTier = m.tiers.map((t) => t.routing.groupTopK * t.routing.expertTopK).sort((a, b) => b - a);
  const perLayer = perTier.slice(0, m.routing.tierTopK).reduce((a, b) => a + b, 0);
  return {
    tiers: m.tiers.map((t, i) => ({
      id: t.id,
      experts: sizes[i].length,
      bytes: sizes[i].reduce((a, b) => a + b, 0),
      restricted: t.restricted,
    })),
    tokenBytes: m.architecture.layers * perLayer * Math.max(...sizes.flat()),
  };
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export function series(text: string, metric: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`)) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of line.slice(metric.length, line.lastIndexOf("}") + 1).matchAll(/(\w+)="([^"]*)"/g))
      labels[k] = v;
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(" ") + 1)) });
  }
  return out;
}

/** Sum of a metric's series over the phase's workers whose labels include `match`. */
export async function sumOf(phase: Phase, metric: string, match: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const url of phase.metricsUrls)
    for (const s of series(await scrapeWorkerMetrics(url, TEST_ADMIN_KEY), metric))
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

export interface Counters {
  hits: number;
  misses: number;
  suffered: number;
  caused: number;
  victimLoads: number;
  neighbourLoads: number;
  neighbourCaused: number;
  neighbourTokens: number;
}

export async function counters(phase: Phase, victim: string, neighbour: string): Promise<Counters> {
  const tokens = await phase.tokensByTenant();
  return {
    hits: await sumOf(phase, "lite_expert_cache_uses_total", { tenant: victim, result: "hit" }),
    misses: await sumOf(phase, "lite_expert_cache_uses_total", { tenant: victim, result: "miss" }),
    suffered: await sumOf(phase, "lite_expert_cache_evictions_total", { tenant: victim, role: "suffered" }),
    caused: await sumOf(phase, "lite_expert_cache_evictions_total", { tenant: victim, role: "caused" }),
    victimLoads: await sumOf(phase, "lite_expert_cache_loads_total", { tenant: victim }),
    neighbourLoads: await sumOf(phase, "lite_expert_cache_loads_total", { tenant: neighbour }),
    neighbourCaused: await sumOf(phase, "lite_expert_cache_evictions_total", { tenant: neighbour, role: "caused" }),
    neighbourTokens: tokens.get(neighbour) ?? 0,
  };
}

export interface QuotaSamples {
  samples: number;
  failed: number;
  /** samples in which any tenant's bytes in any level were over its quota */
  over: number;
  /** largest bytes seen, per tenant role and level */
  max: Record<"victim" | "neighbour", Record<Level, number>>;
}

/** Polls lite_expert_cache_bytes every `sampleMs` against the tenants' quotas until stopped. */
export function sampleQuotas(
  phase: Phase,
  tenants: Record<"victim" | "neighbour", { id: string; quota: CacheQuota }>,
  sampleMs: number,
) {
  const r: QuotaSamples = {
    samples: 0,
    failed: 0,
    over: 0,
    max: { victim: { HOT: 0, WARM: 0 }, neighbour: { HOT: 0, WARM: 0 } },
  };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const next = performance.now() + sampleMs;
      try {
        const bytes = new Map<string, number>();
        for (const url of phase.metricsUrls)
          for (const s of series(await scrapeWorkerMetrics(url, TEST_ADMIN_KEY), "lite_expert_cache_bytes")) {
            const key = `${s.labels.tenant}|${s.labels.level}`;
            bytes.set(key, (bytes.get(key) ?? 0) + s.value);
          }
        let over = false;
        for (const role of ["victim", "neighbour"] as const)
          for (const level of ["HOT", "WARM"] as const) {
            const b = bytes.get(`${tenants[role].id}|${level}`) ?? 0;
            r.max[role][level] = Math.max(r.max[role][level], b);
            if (b > tenants[role].quota[level === "HOT" ? "hot" : "warm"]) over = true;
          }
        r.samples++;
        if (over) r.over++;
      } catch {
        r.failed++;
      }
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  return {
    async stop(): Promise<QuotaSamples> {
      stopped = true;
      await loop;
      return r;
    },
  };
}
