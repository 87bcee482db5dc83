import type { ExpertStoreContext } from "@lite/model";
import type { Residency } from "./cache-entry";
import type { CacheQuotaSource } from "./cache-quota";
import type { CacheObserver } from "./tenant-figures";

/** ExpertResidency's options, views and outcomes (expert-residency.ts). */
export interface ExpertResidencyOptions {
  /** bytes of HOT experts in this worker (all models, all tenants) */
  hotCapacityBytes: number;
  /** bytes of WARM experts in this worker, HOT ones included (WARM ⊇ HOT) */
  warmCapacityBytes: number;
  quotas: CacheQuotaSource;
  /** uses (acquires) per accounting epoch; default 4096 */
  epochUses?: number;
  observer?: CacheObserver;
  /**
   * "fair" (default): per-tenant quotas and fair eviction (victim-choice.ts). "lru": a plain
   * global LRU — no quota enforced, a full level evicts the least valuable idle entry of
   * anyone. A benchmark baseline (EXPERT_CACHE_EVICTION, bench/memory.bench.ts), not for production.
   */
  eviction?: EvictionPolicy;
  /**
   * Fraction of wall time the loads' session creations (synchronous on the JS thread, which
   * every decode step needs) may take, in (0, 1]; 1 = unbounded. Default DEFAULT_LOAD_SHARE.
   */
  loadShare?: number;
  /** ms of session creation that may run back to back after an idle time; default DEFAULT_LOAD_BURST_MS */
  loadBurstMs?: number;
  /** whether a decode step wants the JS thread now: the load share binds only then (LoadGovernor `contended`); default always */
  loadContended?: () => boolean;
}

export type EvictionPolicy = "fair" | "lru";

/** Who loads through the residency: one model runtime's store (its id keeps keys apart). */
export interface ResidencyView {
  readonly id: string;
  readonly ctx: ExpertStoreContext;
}

export interface ResidentExpert {
  id: string;
  level: Residency;
  bytes: number;
  leases: number;
  hotUsers: string[];
  warmUsers: string[];
}

export const DEFAULT_EPOCH_USES = 4096;
/** loads may take a quarter of the JS thread (bench coldload) */
export const DEFAULT_LOAD_SHARE = 0.25;
/** about one large session creation of the `default` model */
export const DEFAULT_LOAD_BURST_MS = 20;

/** What a prefetch did: the level it brought the expert to, or why nothing. */
export type PrefetchOutcome = Residency | "resident" | "no-room" | "throttled" | "closed";
