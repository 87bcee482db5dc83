/**
 * Admission with degrade (step 4 of createCompletion):
 *  1. admit the requested TierSet (libs/scheduler Admission.admit with the tenant's quota);
 *  2. refused for a cost-weighted limit (tokensPerMinute, maxOutstandingTokens) under a
 *     DEGRADE policy: try each smaller TierSet (libs/auth smallerTierSets, largest first)
 *     and take the first that fits, marked degraded; stop at a refusal for any other limit
 *     (a smaller TierSet cannot help);
 *  3. still refused: count it, audit the DENY and answer UNAVAILABLE (the deployment is
 *     saturated) or RATE_LIMITED / QUOTA_EXCEEDED with the Retry-After of the limit that bit.
 * An admit that throws (Redis unreachable or past its deadline) may have reserved before its
 * answer was lost: it is abandoned in the background (Admission.abandon) and the error goes
 * on (createCompletion answers UNAVAILABLE).
 */
import { DomainError, err, ok, withRetry, type Result } from "@lite/core";
import { actorOf, smallerTierSets, type Principal, type ResolvedTierSet, type TierSet } from "@lite/auth";
import type { AdmissionRefusal, TenantLimits } from "@lite/scheduler";
import type { Quota } from "@lite/tenancy";
import type { CompletionResources } from "./completion.types";

/** The quota fields admission reads (libs/tenancy's `Quota` has more). */
export type AdmissionQuota = Pick<Quota, keyof TenantLimits | "overQuotaPolicy">;

export interface AdmitRequest {
  tenantId: string;
  completionId: string;
  maxTokens: number;
  quota: AdmissionQuota;
  tierSet: ResolvedTierSet;
}

/** Limits whose cost a smaller TierSet lowers (they count tokens × cost weight). */
const DEGRADABLE = new Set<string>(["tokensPerMinute", "maxOutstandingTokens"]);

export async function admitWithDegrade(
  r: Pick<CompletionResources, "admission" | "metrics" | "audit" | "log" | "clock" | "caches">,
  principal: Principal,
  q: AdmitRequest,
): Promise<Result<{ chosen: TierSet; degraded: boolean }>> {
  const { tenantId, completionId, quota } = q;
  const limits: TenantLimits = {
    requestsPerMinute: quota.requestsPerMinute,
    tokensPerMinute: quota.tokensPerMinute,
    maxConcurrentRequests: quota.maxConcurrentRequests,
    maxOutstandingTokens: quota.maxOutstandingTokens,
  };
  const sentAtMs = r.clock.nowMs();
  const admit = (set: TierSet) =>
    r.admission
      .admit({ tenantId, completionId, maxTokens: q.maxTokens, costWeight: set.costWeight, limits })
      .catch((e: unknown) => {
        abandonInBackground(r, tenantId, completionId);
        throw e;
      });

  let decision: Result<unknown, AdmissionRefusal> = await admit(q.tierSet);
  if (decision.ok) return ok({ chosen: q.tierSet, degraded: false });
  if (
    decision.error.code !== "UNAVAILABLE" &&
    quota.overQuotaPolicy === "DEGRADE" &&
    DEGRADABLE.has(decision.error.limit)
  ) {
    for (const smaller of smallerTierSets(q.tierSet)) {
      decision = await admit(smaller);
      if (decision.ok) return ok({ chosen: smaller, degraded: true });
      if (!DEGRADABLE.has(decision.error.limit)) break;
    }
  }
  const refusal = decision.error;
  if (refusal.limit === "requestsPerMinute") r.caches?.rateRefusals.note(tenantId, sentAtMs, refusal.retryAfterMs);
  await auditRefusal(r, principal, tenantId, `completion:${completionId}`, refusal.code, refusal.limit);
  return err(refusalError(refusal, tenantId));
}

/** A createCompletion refused for a limit: counted (throttled) and audited DENY, naming the limit. */
export async function auditRefusal(
  r: Pick<CompletionResources, "metrics" | "audit">,
  principal: Principal,
  tenantId: string,
  resource: string,
  code: string,
  limit: string,
): Promise<void> {
  r.metrics.throttled.inc({ tenant: tenantId, code });
  await r.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: "completion.admit",
    resource,
    decision: "DENY",
    reason: `${code} ${limit}`,
  });
}

/**
 * admit threw (Redis unreachable or past its deadline): it may have reserved before the
 * answer was lost, and the caller is answered UNAVAILABLE, so no row will ever settle it.
 * Undo it once Redis is back (a no-op when nothing was reserved); bounded, in the background.
 */
function abandonInBackground(
  r: Pick<CompletionResources, "admission" | "log">,
  tenantId: string,
  completionId: string,
): void {
  void withRetry(() => r.admission.abandon(tenantId, completionId), {
    attempts: ABANDON_ATTEMPTS,
    initialMs: 250,
    maxMs: 5000,
    unref: true,
  }).catch((e: unknown) =>
    r.log.error({ err: e, tenantId, completionId }, "gave up undoing an admission whose answer was lost"),
  );
}

/** About 4.5 min of attempts (250 ms doubling to 5 s), like endCompletion's background retry. */
const ABANDON_ATTEMPTS = 60;

/**
 * A tenant this process saw refused for requestsPerMinute, still inside that refusal's window
 * (rate-refusals.ts): refused now as admission would refuse it, counted and audited the same,
 * before its TierSet is resolved or anything is reserved. null: go on to admission.
 */
export async function refuseWithinRateWindow(
  r: Pick<CompletionResources, "metrics" | "audit" | "clock" | "caches">,
  principal: Principal,
  tenantId: string,
): Promise<DomainError | null> {
  const waitMs = r.caches?.rateRefusals.waitMs(tenantId, r.clock.nowMs()) ?? 0;
  if (waitMs <= 0) return null;
  const refusal: AdmissionRefusal = {
    code: "RATE_LIMITED",
    limit: "requestsPerMinute",
    retryAfterMs: Math.ceil(waitMs),
  };
  await auditRefusal(r, principal, tenantId, "completion", refusal.code, refusal.limit);
  return refusalError(refusal, tenantId);
}

function refusalError(r: AdmissionRefusal, tenantId: string): DomainError {
  const message =
    r.code === "UNAVAILABLE"
      ? "the deployment is saturated; retry later"
      : `tenant ${tenantId} is over its ${r.limit} limit; retry later`;
  return new DomainError(r.code, message, { retryAfterMs: r.retryAfterMs, reason: r.limit, retryable: true });
}
