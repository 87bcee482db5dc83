import { systemClock, type Clock } from "@lite/core";
import type { Registry } from "prom-client";

/**
 * The bounded `tenant` label of one process's Prometheus series: the top N tenants by
 * traffic keep their id, every other tenant counts under `other`, so a registry never holds
 * more than N + 1 tenant values per metric, whatever the number of tenants.
 *
 * 1. Each labelled event adds its weight to the tenant's traffic score, decayed
 *    exponentially (half-life `halfLifeMs`), so "top" means recent traffic.
 * 2. While fewer than N tenants are named, a new tenant is named at once (first come).
 * 3. Every `rankEveryMs` the named set becomes the N highest scores. A tenant that leaves
 *    it has its series removed from the registry (a counter that moved under `other` would
 *    otherwise stay frozen under its id and keep the label count above N + 1); one that
 *    joins starts new series. `other` only ever grows, so rate() over it stays correct.
 * 4. Scores too small to matter are forgotten at each ranking, bounding memory.
 * Each process ranks its own traffic: N bounds every process's series; the union over
 * many processes may name more tenants (each of them a top tenant somewhere).
 */

export const OTHER_TENANTS = "other";

export interface TenantLabelsOptions {
  /** N: tenants that keep their id (≥ 0); METRICS_TENANT_LABELS in the apps */
  maxTenants: number;
  /** the registry whose series of demoted tenants are removed */
  registry?: Registry;
  /** how often the named set is ranked again, ms (default 60 000) */
  rankEveryMs?: number;
  /** half-life of the traffic score, ms (default 300 000) */
  halfLifeMs?: number;
  clock?: Clock;
}

interface Score {
  value: number;
  atMs: number;
}

/** The hash map prom-client keeps per metric (the same in every metric type of v15). */
interface LabelledMetric {
  labelNames?: readonly string[];
  hashMap?: Record<string, { labels?: Record<string, string | number> }>;
  remove(labels: Record<string, string | number>): void;
}

export class TenantLabels {
  private readonly named = new Set<string>();
  private readonly scores = new Map<string, Score>();
  private readonly clock: Clock;
  private readonly rankEveryMs: number;
  private readonly halfLifeMs: number;
  private nextRankMs: number;

  constructor(private readonly opts: TenantLabelsOptions) {
    if (!Number.isInteger(opts.maxTenants) || opts.maxTenants < 0)
      throw new RangeError(`maxTenants must be a non-negative integer, got ${opts.maxTenants}`);
    this.clock = opts.clock ?? systemClock;
    this.rankEveryMs = opts.rankEveryMs ?? 60_000;
    this.halfLifeMs = opts.halfLifeMs ?? 300_000;
    this.nextRankMs = this.clock.nowMs() + this.rankEveryMs;
  }

  /** The label for one event of `weight` units of the tenant's traffic (a request, a token…). */
  label(tenantId: string, weight = 1): string {
    const now = this.clock.nowMs();
    if (now >= this.nextRankMs) this.rank(now);
    const s = this.scores.get(tenantId);
    if (s) {
      s.value = this.decayed(s, now) + weight;
      s.atMs = now;
    } else this.scores.set(tenantId, { value: weight, atMs: now });
    if (this.named.has(tenantId)) return tenantId;
    if (this.named.size < this.opts.maxTenants) {
      this.named.add(tenantId);
      return tenantId;
    }
    return OTHER_TENANTS;
  }

  /** The label a gauge reads for the tenant now (counts no traffic). */
  peek(tenantId: string): string {
    return this.named.has(tenantId) ? tenantId : OTHER_TENANTS;
  }

  /** The tenants named now (tests, debugging). */
  namedTenants(): string[] {
    return [...this.named].sort();
  }

  /** Ranks now (step 3); called by `label` every `rankEveryMs`. */
  rank(now = this.clock.nowMs()): void {
    this.nextRankMs = now + this.rankEveryMs;
    const ranked: Array<[string, number]> = [];
    for (const [t, s] of this.scores) {
      const v = this.decayed(s, now);
      if (v < 1e-3 && !this.named.has(t)) this.scores.delete(t);
      else ranked.push([t, v]);
    }
    ranked.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const top = new Set(ranked.slice(0, this.opts.maxTenants).map(([t]) => t));
    const demoted = [...this.named].filter((t) => !top.has(t));
    this.named.clear();
    for (const t of top) this.named.add(t);
    if (demoted.length > 0 && this.opts.registry) removeTenantSeries(this.opts.registry, new Set(demoted));
  }

  private decayed(s: Score, now: number): number {
    return s.value * Math.pow(0.5, Math.max(0, now - s.atMs) / this.halfLifeMs);
  }
}

/** Removes every series whose `tenant` label is one of `tenants`, from every metric of the registry. */
export function removeTenantSeries(registry: Registry, tenants: ReadonlySet<string>): void {
  for (const metric of registry.getMetricsAsArray() as unknown as LabelledMetric[]) {
    if (!metric.labelNames?.includes("tenant") || !metric.hashMap) continue;
    for (const entry of Object.values(metric.hashMap)) {
      const labels = entry.labels ?? {};
      if (tenants.has(String(labels.tenant))) metric.remove(labels);
    }
  }
}
