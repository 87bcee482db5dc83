import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";
import type { Logger } from "pino";
import {
  API_ERROR_CODES,
  assertNever,
  DomainError,
  isTransientInfraError,
  type ApiErrorCode,
  type DomainErrorCode,
} from "@lite/core";

/**
 * The one place mapping domain errors to GraphQL `extensions.code` and HTTP status
 * (contract: ERRORS). Unknown errors are masked: INTERNAL_SERVER_ERROR, HTTP 500, no
 * detail, no stack, only a request id to quote; the real error goes to the log.
 */
export interface ErrorMapping {
  code: ApiErrorCode;
  /** undefined: leave the status alone (NOT_FOUND answers 200 with a null field) */
  status: number | undefined;
  masked: boolean;
}

export function mapDomainCode(code: DomainErrorCode): ErrorMapping {
  switch (code) {
    case "UNAUTHENTICATED":
      return { code, status: 401, masked: false };
    case "FORBIDDEN":
      return { code, status: 403, masked: false };
    case "BAD_USER_INPUT":
      return { code, status: 400, masked: false };
    case "CONFLICT":
      return { code: "BAD_USER_INPUT", status: 400, masked: false };
    case "NOT_FOUND":
      return { code, status: undefined, masked: false };
    case "RATE_LIMITED":
    case "QUOTA_EXCEEDED":
      return { code, status: 429, masked: false };
    case "UNAVAILABLE":
      return { code, status: 503, masked: false };
    case "NOT_IMPLEMENTED":
      return { code, status: 501, masked: false };
    case "STREAM_EXPIRED":
      return { code, status: 410, masked: false };
    case "INTERNAL":
      return { code: "INTERNAL_SERVER_ERROR", status: 500, masked: true };
    default:
      return assertNever(code, "unmapped error code");
  }
}

/** Whole seconds, at least 1. */
export function retryAfterSeconds(retryAfterMs: number | undefined): number {
  return Math.max(1, Math.ceil((retryAfterMs ?? 1000) / 1000));
}

export const INTERNAL_MESSAGE = "Internal server error";

export function internalError(requestId: string): GraphQLError {
  return new GraphQLError(INTERNAL_MESSAGE, {
    extensions: { code: "INTERNAL_SERVER_ERROR", requestId, http: { status: 500 } },
  });
}

export function toGraphQLError(error: DomainError, requestId: string): GraphQLError {
  const m = mapDomainCode(error.code);
  if (m.masked) return internalError(requestId);
  const extensions: Record<string, unknown> = { code: m.code, requestId };
  if (error.reason) extensions.reason = error.reason;
  else if (error.code === "CONFLICT") extensions.reason = "CONFLICT";
  if (error.field) extensions.field = error.field;
  const headers = new Map<string, string>();
  if (m.code === "RATE_LIMITED" || m.code === "QUOTA_EXCEEDED" || m.code === "UNAVAILABLE") {
    const seconds = retryAfterSeconds(error.retryAfterMs);
    extensions.retryAfterMs = Math.max(error.retryAfterMs ?? seconds * 1000, 1);
    headers.set("retry-after", String(seconds));
  }
  if (m.status !== undefined) extensions.http = { status: m.status, headers };
  return new GraphQLError(error.message, { extensions });
}

/** What a resolver threw → what the client sees. */
export function mapResolverError(thrown: unknown, requestId: string, log?: Logger): GraphQLError {
  const e = unwrapResolverError(thrown);
  if (e instanceof DomainError) {
    const mapped = toGraphQLError(e, requestId);
    if (mapDomainCode(e.code).masked) log?.error({ err: e, requestId }, "internal error");
    return mapped;
  }
  if (
    e instanceof GraphQLError &&
    typeof e.extensions?.code === "string" &&
    e.extensions.code !== "INTERNAL_SERVER_ERROR"
  ) {
    return e;
  }
  if (isTransientInfraError(e)) {
    // PostgreSQL or Redis briefly unreachable: the client should retry, not report a bug.
    log?.warn({ err: e, requestId }, "backing service unavailable");
    return toGraphQLError(
      new DomainError("UNAVAILABLE", "a backing service is briefly unavailable; retry shortly", {
        retryAfterMs: 1000,
      }),
      requestId,
    );
  }
  log?.error({ err: e, requestId }, "unexpected error");
  return internalError(requestId);
}

/** Codes graphql-js and Apollo produce themselves and that are safe to show. */
const PASS_THROUGH = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);
/** Ours and shown as they are; INTERNAL_SERVER_ERROR is rebuilt below so nothing leaks with it. */
const OURS = new Set<string>(API_ERROR_CODES.filter((c) => c !== "INTERNAL_SERVER_ERROR"));

/** `Variable "$input" got invalid value … at "input.quota.hotMemoryBytes"; …` → the field. */
export function fieldOfVariableError(message: string): string | undefined {
  const at = /Variable "\$[A-Za-z_][A-Za-z0-9_]*" got invalid value .*? at "([^"]+)"/s.exec(message);
  if (at) return at[1];
  const v = /Variable "\$([A-Za-z_][A-Za-z0-9_]*)"/.exec(message);
  return v?.[1];
}

/** An error Apollo raised itself about the request, with a 4xx status and no original cause. */
function isApolloClientError(error: unknown): boolean {
  if (!(error instanceof GraphQLError) || error.originalError || error.path) return false;
  const status = (error.extensions?.http as { status?: unknown } | undefined)?.status;
  return typeof status === "number" && status >= 400 && status < 500;
}

/** Apollo formatError: the last gate before the client. */
export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  const {
    stacktrace: _stack,
    exception: _exception,
    ...extensions
  } = (formatted.extensions ?? {}) as Record<string, unknown>;
  if (typeof code === "string" && OURS.has(code)) {
    if (code === "BAD_USER_INPUT" && extensions.field === undefined) {
      const field = fieldOfVariableError(formatted.message);
      if (field) extensions.field = field;
    }
    return { ...formatted, extensions };
  }
  if (typeof code === "string" && PASS_THROUGH.has(code)) return { ...formatted, extensions };
  const requestId = typeof extensions.requestId === "string" ? extensions.requestId : undefined;
  if (code === undefined && isApolloClientError(error)) {
    // Apollo's own refusals of a request (e.g. a persisted-query hash that does not match)
    // carry a 4xx status but no code: a client error, not an internal one.
    return { message: formatted.message, extensions: { code: "BAD_REQUEST", ...(requestId ? { requestId } : {}) } };
  }
  return {
    message: INTERNAL_MESSAGE,
    path: formatted.path,
    locations: formatted.locations,
    extensions: { code: "INTERNAL_SERVER_ERROR", ...(requestId ? { requestId } : {}) },
  };
}
