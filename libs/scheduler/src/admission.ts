/**
 * Admission: per-tenant rate limits and quotas plus the deployment-wide bound on queued
 * work, decided atomically in Redis so that every API process shares them.
 *
 * admit(req):
 *  1. Tenant script (admit-2.lua, slot {t:<tenant>}): refill the requests and tokens buckets,
 *     check requestsPerMinute → maxConcurrentRequests → tokensPerMinute →
 *     maxOutstandingTokens (non-degradable limits first, so a DEGRADE caller knows whether a
 *     smaller TierSet can help), then write the reservation and a per-completion record.
 *     An existing record answers again: admit is idempotent per completionId.
 *  2. Global script (global-reserve-2.lua, slot {sched}): add the completion's reservation
 *     to the global queued work if it stays within maxQueuedTokens.
 *  3. If the global step refuses, roll step 1 back (settle-2.lua "rollback": refund the
 *     request and the tokens, free the slot, delete the record) and answer UNAVAILABLE.
 *  The two slots differ, so (for Redis Cluster) this is two scripts; tenant first means a
 *  refusal only ever holds the same tenant's counters for a moment, never another tenant's.
 *
 * progress(generatedSoFar) / settle(generated): the tenant script computes the completion's
 * remaining contribution (reserved − generated × costWeight, never below 0) and the
 * global-lower script sets the global contribution to it, absolute and monotone, so retries
 * converge. settle also frees the concurrency slot and refunds the unused part of the
 * tokens reservation to the tokens bucket; a second settle is a no-op.
 *
 * Amounts are stored as integer milli-tokens so sums return exactly to zero.
 */
import path from "node:path";
import type { Redis } from "ioredis";
import type { RedisKeys } from "@lite/redis";
import { err, ok, type Clock, type Result } from "@lite/core";
import { loadLuaCommands, num, type LuaCommand } from "./lua-scripts";
import { AdmitCode, type AdmissionRefusal, type AdmissionUsage, type TenantLimits } from "./admission.types";

export * from "./admission.types";

export interface AdmissionOptions {
  redis: Redis;
  keys: RedisKeys;
  /** global bound on cost-weighted queued tokens (RUNTIME MAX_QUEUED_TOKENS, default 1000000) */
  maxQueuedTokens: number;
  /** Retry hint (ms) for maxConcurrentRequests / maxOutstandingTokens / global refusals,
   *  whose release time is unknown. Default 1000. */
  quotaRetryAfterMs?: number;
  /** How long (s) a settled record is kept so that a repeated settle/admit is a no-op. Default 86400. */
  settledRecordTtlSeconds?: number;
  /** Time source passed to the scripts; default: redis TIME (one clock for all API processes). */
  clock?: Clock;
}

type Name = "admit" | "progress" | "settle" | "global-reserve" | "global-lower";

const MILLI = 1000;

export class Admission {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly maxQueuedMilli: number;
  private readonly hintMs: number;
  private readonly ttlSeconds: number;
  private readonly clock?: Clock;
  private readonly lua: Record<Name, LuaCommand>;

  constructor(opts: AdmissionOptions) {
    this.redis = opts.redis;
    this.keys = opts.keys;
    this.maxQueuedMilli = Math.round(opts.maxQueuedTokens * MILLI);
    this.hintMs = Math.max(1, Math.round(opts.quotaRetryAfterMs ?? 1000));
    this.ttlSeconds = opts.settledRecordTtlSeconds ?? 86400;
    this.clock = opts.clock;
    this.lua = loadLuaCommands<Name>(this.redis, path.join(__dirname, "lua"), "liteSched");
  }

  private now(): string {
    return this.clock ? String(Math.floor(this.clock.nowMs())) : "";
  }

  private field(tenantId: string, completionId: string): string {
    return `${tenantId}/${completionId}`;
  }

  /** Reserves maxTokens × costWeight up front. Idempotent per completionId. */
  async admit(req: {
    tenantId: string;
    completionId: string;
    maxTokens: number;
    costWeight: number;
    limits: TenantLimits;
  }): Promise<Result<{ reservedTokens: number }, AdmissionRefusal>> {
    const { tenantId, completionId, limits } = req;
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new Error(`maxTokens must be a positive integer`);
    if (!(req.costWeight > 0)) throw new Error(`costWeight must be positive`);
    const cwMilli = Math.max(1, Math.round(req.costWeight * MILLI));
    const [code, value] = (await this.lua.admit(
      [this.keys.admissionState(tenantId), this.keys.admissionRecord(tenantId, completionId)],
      [
        this.now(),
        limits.requestsPerMinute,
        limits.tokensPerMinute,
        limits.maxConcurrentRequests,
        limits.maxOutstandingTokens,
        req.maxTokens,
        cwMilli,
        this.hintMs,
      ],
    )) as [number, number | string];
    switch (code as AdmitCode) {
      case AdmitCode.Admitted:
      case AdmitCode.AlreadyAdmitted:
        break;
      case AdmitCode.AlreadySettled:
        return ok({ reservedTokens: num(value) / MILLI });
      case AdmitCode.RequestsPerMinute:
        return err({ code: "RATE_LIMITED", limit: "requestsPerMinute", retryAfterMs: num(value) });
      case AdmitCode.TokensPerMinute:
        return err({ code: "RATE_LIMITED", limit: "tokensPerMinute", retryAfterMs: num(value) });
      case AdmitCode.MaxConcurrentRequests:
        return err({ code: "QUOTA_EXCEEDED", limit: "maxConcurrentRequests", retryAfterMs: num(value) });
      case AdmitCode.MaxOutstandingTokens:
        return err({ code: "QUOTA_EXCEEDED", limit: "maxOutstandingTokens", retryAfterMs: num(value) });
      default:
        throw new Error(`admit-2.lua returned unknown code ${code}`);
    }
    const reservedMilli = num(value);
    const reserved = await this.lua["global-reserve"](
      [this.keys.globalQueuedTokens(), this.keys.globalQueuedContributions()],
      [this.field(tenantId, completionId), reservedMilli, this.maxQueuedMilli],
    );
    if (num(reserved) !== 1) {
      await this.lua.settle(
        [this.keys.admissionState(tenantId), this.keys.admissionRecord(tenantId, completionId)],
        [this.now(), 0, this.ttlSeconds, "rollback"],
      );
      return err({ code: "UNAVAILABLE", limit: "globalQueuedTokens", retryAfterMs: this.hintMs });
    }
    return ok({ reservedTokens: reservedMilli / MILLI });
  }

  /** generatedTokens is the running total; outstanding -= what it releases (never below 0). */
  async progress(tenantId: string, completionId: string, generatedTokens: number): Promise<void> {
    const [active, contribution] = (await this.lua.progress(
      [this.keys.admissionState(tenantId), this.keys.admissionRecord(tenantId, completionId)],
      [Math.max(0, Math.floor(generatedTokens))],
    )) as [number, number];
    if (active !== 1) return;
    await this.lua["global-lower"](
      [this.keys.globalQueuedTokens(), this.keys.globalQueuedContributions()],
      [this.field(tenantId, completionId), contribution],
    );
  }

  /** Releases the slot and the rest of the reservation; settles tokensPerMinute with the
   *  actual count. A second call is a no-op (the global step always runs: it converges). */
  async settle(tenantId: string, completionId: string, generatedTokens: number): Promise<void> {
    await this.lua.settle(
      [this.keys.admissionState(tenantId), this.keys.admissionRecord(tenantId, completionId)],
      [this.now(), Math.max(0, Math.floor(generatedTokens)), this.ttlSeconds, ""],
    );
    await this.lua["global-lower"](
      [this.keys.globalQueuedTokens(), this.keys.globalQueuedContributions()],
      [this.field(tenantId, completionId), 0],
    );
  }

  /**
   * Undoes an admit whose answer was lost (Redis unreachable mid-call: it may or may not
   * have run): as if it never happened — the request and tokens refunded, the slot freed,
   * the record deleted (so the same completionId may be admitted again), the global
   * contribution removed. A no-op when nothing was admitted; safe to retry.
   */
  async abandon(tenantId: string, completionId: string): Promise<void> {
    await this.lua.settle(
      [this.keys.admissionState(tenantId), this.keys.admissionRecord(tenantId, completionId)],
      [this.now(), 0, this.ttlSeconds, "rollback"],
    );
    await this.lua["global-lower"](
      [this.keys.globalQueuedTokens(), this.keys.globalQueuedContributions()],
      [this.field(tenantId, completionId), 0],
    );
  }

  async usage(tenantId: string): Promise<AdmissionUsage> {
    // Two slots ({t:…} and {sched}): two commands, not one MULTI.
    const [state, total] = await Promise.all([
      this.redis.hmget(this.keys.admissionState(tenantId), "concurrent", "outstanding"),
      this.redis.get(this.keys.globalQueuedTokens()),
    ]);
    return {
      concurrent: Number(state[0] ?? 0),
      outstandingTokens: Number(state[1] ?? 0) / MILLI,
      queuedTokensGlobal: Number(total ?? 0) / MILLI,
    };
  }
}
