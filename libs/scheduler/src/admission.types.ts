/** Per-tenant admission limits (RUNTIME.md "Limits and defaults"). Token amounts are cost-weighted. */
export interface TenantLimits {
  /** requests per minute, token bucket of this capacity refilled continuously */
  requestsPerMinute: number;
  /** cost-weighted tokens (maxTokens × costWeight) per minute, token bucket */
  tokensPerMinute: number;
  /** completions admitted and not yet settled */
  maxConcurrentRequests: number;
  /** cost-weighted tokens reserved and not yet generated */
  maxOutstandingTokens: number;
}

export type AdmissionLimit =
  "requestsPerMinute" | "tokensPerMinute" | "maxConcurrentRequests" | "maxOutstandingTokens" | "globalQueuedTokens";

export type AdmissionRefusal = {
  code: "RATE_LIMITED" | "QUOTA_EXCEEDED" | "UNAVAILABLE";
  limit: AdmissionLimit;
  /** exact milliseconds, >= 1 (the API rounds up to whole seconds for Retry-After) */
  retryAfterMs: number;
};

export interface AdmissionUsage {
  concurrent: number;
  /** cost-weighted tokens */
  outstandingTokens: number;
  /** cost-weighted tokens, all tenants */
  queuedTokensGlobal: number;
}

/** Return codes of admit-2.lua. */
export enum AdmitCode {
  Admitted = 0,
  AlreadyAdmitted = 1,
  RequestsPerMinute = 2,
  MaxConcurrentRequests = 3,
  TokensPerMinute = 4,
  MaxOutstandingTokens = 5,
  AlreadySettled = 6,
}
