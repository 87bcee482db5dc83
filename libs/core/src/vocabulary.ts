/**
 * The one vocabulary of the service: every closed set of names that PostgreSQL (Prisma enums),
 * the GraphQL contract, the queues and the libraries share. Each set is written once here as a
 * `const` array (iterable at run time: zod enums, GraphQL enum registration, the Prisma parity
 * test) with its union type derived from it. Everything else imports these; a test checks the
 * Prisma enums and the served GraphQL enums equal them, so a change here that the schema
 * does not follow fails the suite.
 */

/** Who a principal is (Prisma `Role`, GraphQL `Role`). */
export const ROLES = ["ADMIN", "TENANT", "FINANCE"] as const;
export type Role = (typeof ROLES)[number];

/** Where a tier's weights live (Prisma and GraphQL `Placement`, the manifest's `placement`). */
export const PLACEMENTS = ["HOT", "WARM", "COLD", "ARCHIVE"] as const;
export type Placement = (typeof PLACEMENTS)[number];

/** Fixed TierSet modes, smallest first (Prisma and GraphQL `TierMode`, the job payload's `mode`). */
export const TIER_MODES = ["FAST", "BALANCED", "DEEP", "MAX"] as const;
export type TierMode = (typeof TIER_MODES)[number];
/** The mode a completion runs in when it names neither a mode nor tiers. */
export const DEFAULT_TIER_MODE: TierMode = "BALANCED";

/**
 * The placements each fixed mode activates among public, non-restricted tiers:
 * FAST = hot, BALANCED = hot + warm, DEEP = hot + warm + cold. MAX is not a placement set
 * (every tier the tenant is entitled to, restricted ones included), so it has no entry.
 */
export const MODE_PLACEMENTS: Readonly<Record<Exclude<TierMode, "MAX">, readonly Placement[]>> = {
  FAST: ["HOT"],
  BALANCED: ["HOT", "WARM"],
  DEEP: ["HOT", "WARM", "COLD"],
};

/** What happens to a completion over its tenant's quota (Prisma and GraphQL `OverQuotaPolicy`). */
export const OVER_QUOTA_POLICIES = ["REJECT", "DEGRADE"] as const;
export type OverQuotaPolicy = (typeof OVER_QUOTA_POLICIES)[number];

/** A completion's lifecycle (Prisma and GraphQL `CompletionStatus`). */
export const COMPLETION_STATUSES = ["QUEUED", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"] as const;
export type CompletionStatus = (typeof COMPLETION_STATUSES)[number];
/** Statuses a completion can still leave (the row guard of every finishing write). */
export const ACTIVE_STATUSES = ["QUEUED", "RUNNING"] as const satisfies readonly CompletionStatus[];
export type ActiveStatus = (typeof ACTIVE_STATUSES)[number];
/** Statuses a completion never leaves. */
export const TERMINAL_STATUSES = ["COMPLETED", "CANCELLED", "FAILED"] as const satisfies readonly CompletionStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export function isTerminalStatus(status: string): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** Why a completion's generation ended (Prisma and GraphQL `FinishReason`, the final token event). */
export const FINISH_REASONS = ["STOP", "LENGTH", "CANCELLED", "ERROR"] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

/** The terminal status a finish reason leaves the completion in. */
export function statusOfFinish(reason: FinishReason): TerminalStatus {
  return reason === "CANCELLED" ? "CANCELLED" : reason === "ERROR" ? "FAILED" : "COMPLETED";
}

/** The billable meters (Prisma and GraphQL `Meter`), shared by usage events and price books. */
export const METERS = [
  "INPUT_TOKENS",
  "OUTPUT_TOKENS",
  "EXPERT_CALLS",
  "PREFETCH_BYTES",
  "TIERSET_ACTIVATIONS",
  "KV_BYTE_SECONDS",
] as const;
export type Meter = (typeof METERS)[number];

/** Usage bucket sizes (GraphQL `Granularity`; not stored, so no Prisma enum). */
export const GRANULARITIES = ["HOUR", "DAY", "MONTH"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** Audit outcomes: ALLOW or DENY for access decisions, OK or FAIL for operations (`AuditLog.decision`). */
export const AUDIT_DECISIONS = ["ALLOW", "DENY", "OK", "FAIL"] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];

/** The codes a refusal carries both as a domain error and in GraphQL `extensions.code` (contract: ERRORS). */
const REFUSAL_CODES = [
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "BAD_USER_INPUT",
  "NOT_FOUND",
  "RATE_LIMITED",
  "QUOTA_EXCEEDED",
  "UNAVAILABLE",
  "NOT_IMPLEMENTED",
  "STREAM_EXPIRED",
] as const;

/**
 * The codes a client sees in GraphQL `extensions.code` (contract: ERRORS). Every other code is
 * masked as INTERNAL_SERVER_ERROR, except the few graphql-js and Apollo produce themselves.
 */
export const API_ERROR_CODES = [...REFUSAL_CODES, "INTERNAL_SERVER_ERROR"] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/**
 * The codes a `DomainError` carries: the client-visible ones (without the masked
 * INTERNAL_SERVER_ERROR) plus CONFLICT (shown as BAD_USER_INPUT with reason CONFLICT) and
 * INTERNAL (masked). `apps/api/src/errors.ts` maps each to its GraphQL code and HTTP status.
 */
export const DOMAIN_ERROR_CODES = [...REFUSAL_CODES, "CONFLICT", "INTERNAL"] as const;
export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

/** The vocabulary's arrays stored as PostgreSQL enums, by their name in prisma/schema.prisma. */
export const STORED_ENUMS = {
  Role: ROLES,
  Placement: PLACEMENTS,
  TierMode: TIER_MODES,
  OverQuotaPolicy: OVER_QUOTA_POLICIES,
  CompletionStatus: COMPLETION_STATUSES,
  FinishReason: FINISH_REASONS,
  Meter: METERS,
} as const;

/** The vocabulary's arrays the GraphQL contract declares as enums, by their GraphQL name. */
export const GRAPHQL_ENUMS = { ...STORED_ENUMS, Granularity: GRANULARITIES } as const;

/** A record `{ A: "A", B: "B" }` of a vocabulary array, for APIs that want an enum-like object (type-graphql). */
export function enumObject<const T extends string>(values: readonly T[]): { readonly [K in T]: K } {
  return Object.freeze(Object.fromEntries(values.map((v) => [v, v]))) as { readonly [K in T]: K };
}
