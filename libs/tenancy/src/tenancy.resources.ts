import { DomainError, notFound, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { AuditSink, Invalidation } from "@lite/auth";

/**
 * What the tenancy services work with, passed in by the app (never imported as globals):
 * the tables they read and write, the audit queue, the key-cache invalidation shared by
 * every API process, the fair scheduler, and the clock ids and timestamps come from.
 */
export interface TenancyResources {
  db: TenancyDb;
  audit: AuditSink;
  auth: KeyCacheInvalidation;
  /** the fair scheduler (libs/scheduler FairScheduler): tenant weights, cancel flags */
  scheduler: TenancyScheduler;
  clock: Clock;
}

/**
 * What tenancy changes tell the fair scheduler (libs/scheduler `FairScheduler` fits):
 * updateTenant writes a new weight at once, so a tenant with a backlog gets its new share
 * without waiting for its next request; revokeTier flags the tenant's live completions
 * that use the tier, so a worker stops a running one at its next decode step.
 */
export interface TenancyScheduler {
  setTenantWeight(tenantId: string, weight: number): Promise<void>;
  flagCancelled(tenantId: string, completionIds: readonly string[]): Promise<void>;
}

export type TenancyDb = Pick<
  PrismaClient,
  "tenant" | "quota" | "tier" | "tierGrant" | "apiKey" | "model" | "completion" | "$transaction"
>;

/** Drops cached API keys in every API process (after a revocation or a suspension). */
export interface KeyCacheInvalidation {
  invalidate(invalidation: Invalidation): Promise<void>;
}

/**
 * After a change to a tenant's quota, weight or grants: every API process drops what it
 * cached of the tenant (createCompletion's caches, libs/completions). This process applies
 * it at once; should Redis be away, the other processes' entries lapse within their TTL
 * (COMPLETION_CACHE_TTL_MS, 5 s) and the action still stands: it is in PostgreSQL and
 * audited, and the worker re-checks grants at every job start.
 */
export async function invalidateTenantCaches(r: Pick<TenancyResources, "auth">, tenantId: string): Promise<void> {
  await r.auth.invalidate({ kind: "tenant", tenantId }).catch(() => undefined);
}

/**
 * NOT_FOUND for an object that exists but belongs to another tenant. It reads exactly like a
 * missing one (on purpose); `context.hidden` names the owner so the app's access layer can
 * audit the denial the way it audits every ownership refusal.
 */
export function hiddenNotFound(what: string, id: string, ownerTenantId: string | null): DomainError {
  return new DomainError("NOT_FOUND", notFound(what, id).message, { context: { hidden: { what, id, ownerTenantId } } });
}

/** The hidden object behind a NOT_FOUND from hiddenNotFound (null for a plain refusal). */
export interface HiddenObject {
  what: string;
  id: string;
  /** null: an operator's object (an ADMIN or FINANCE key) */
  ownerTenantId: string | null;
}

export function hiddenOf(error: DomainError): HiddenObject | null {
  return (error.context?.hidden as HiddenObject | undefined) ?? null;
}

/** The tenant a TENANT caller is confined to; null for operators (ADMIN, FINANCE). */
export function scopeOf(principal: { role: string; tenantId: string | null }): string | null {
  return principal.role === "TENANT" ? principal.tenantId : null;
}
