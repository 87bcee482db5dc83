import type { Response } from "express";
import { DomainError, isTransientInfraError } from "@lite/core";
import type { Logger } from "pino";
import { INTERNAL_MESSAGE, mapDomainCode, retryAfterSeconds } from "../errors";

/**
 * Errors of the OpenAI-compatible endpoints in OpenAI's shape,
 * `{"error": {"message", "type", "param", "code"}}`, with the statuses GraphQL answers for
 * the same DomainError (errors.ts mapDomainCode is the one mapping; NOT_FOUND, a null field in
 * GraphQL, is 404 here). `code` is the contract's error code (RATE_LIMITED, QUOTA_EXCEEDED, …).
 */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/** OpenAI's `type` for a status, as its SDKs and clients switch on it. */
function typeOfStatus(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "service_unavailable_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** The library's field names (GraphQL's `input.…`) as this API's body fields. */
const REST_FIELDS: Record<string, string> = {
  "input.prompt": "prompt",
  "input.maxTokens": "max_tokens",
  "input.temperature": "temperature",
  "input.model": "model",
  "input.mode": "mode",
  "input.tiers": "tiers",
  "input.seed": "seed",
  "input.idempotencyKey": "Idempotency-Key",
};

export function restField(field: string | undefined): string | null {
  if (field === undefined) return null;
  return REST_FIELDS[field] ?? field;
}

/** Status, body and headers for a DomainError (masked when internal). */
export function openAiError(error: DomainError): {
  status: number;
  body: OpenAiErrorBody;
  headers: Map<string, string>;
} {
  const m = mapDomainCode(error.code);
  const status = m.status ?? 404;
  const headers = new Map<string, string>();
  if (m.masked) {
    return {
      status,
      headers,
      body: { error: { message: INTERNAL_MESSAGE, type: "server_error", param: null, code: m.code } },
    };
  }
  if (status === 429 || status === 503) {
    const ms = Math.max(1, error.retryAfterMs ?? retryAfterSeconds(error.retryAfterMs) * 1000);
    headers.set("retry-after", String(retryAfterSeconds(error.retryAfterMs)));
    headers.set("retry-after-ms", String(ms));
    for (const [name, value] of rateLimitHeaders(error.reason, ms)) headers.set(name, value);
  }
  const param = restField(error.field);
  const message =
    param && error.field && param !== error.field ? error.message.replace(error.field, param) : error.message;
  return { status, headers, body: { error: { message, type: typeOfStatus(status), param, code: m.code } } };
}

/**
 * OpenAI's `x-ratelimit-*` headers for what admission said: which per-minute limit refused
 * the request (its `reason`) and when it frees up. Admission does not return the limit's
 * size or what remains of it, so only `remaining` (0) and `reset` are sent.
 */
function rateLimitHeaders(reason: string | undefined, retryAfterMs: number): Array<[string, string]> {
  const reset = `${Math.ceil(retryAfterMs / 1000)}s`;
  if (reason === "requestsPerMinute") {
    return [
      ["x-ratelimit-remaining-requests", "0"],
      ["x-ratelimit-reset-requests", reset],
    ];
  }
  if (reason === "tokensPerMinute") {
    return [
      ["x-ratelimit-remaining-tokens", "0"],
      ["x-ratelimit-reset-tokens", reset],
    ];
  }
  return [];
}

/** What a handler threw as a DomainError: its own, UNAVAILABLE for a backing service away, else INTERNAL (logged). */
export function asDomainError(thrown: unknown, log: Logger, requestId: string): DomainError {
  if (thrown instanceof DomainError) {
    if (mapDomainCode(thrown.code).masked) log.error({ err: thrown, requestId }, "internal error (openai)");
    return thrown;
  }
  if (isTransientInfraError(thrown)) {
    log.warn({ err: thrown, requestId }, "backing service unavailable (openai)");
    return new DomainError("UNAVAILABLE", "a backing service is briefly unavailable; retry shortly", {
      retryAfterMs: 1000,
    });
  }
  log.error({ err: thrown, requestId }, "unexpected error (openai)");
  return new DomainError("INTERNAL", "unexpected error");
}

/** Answers the error as a whole JSON response (before any byte of a stream was sent). */
export function sendOpenAiError(res: Response, error: DomainError, statusOverride?: number): void {
  const { status: mapped, body, headers } = openAiError(error);
  const status = statusOverride ?? mapped;
  for (const [name, value] of headers) res.setHeader(name, value);
  res.status(status).type("application/json").send(JSON.stringify(body));
}

/** A body-parser failure (express.json) as an OpenAI error; null when it is not one. */
export function bodyParserError(e: { type?: string; status?: number }, limitBytes: number): DomainError | null {
  if (e.type === "entity.too.large" || e.status === 413)
    return new DomainError("BAD_USER_INPUT", `request body over ${limitBytes} bytes`, { reason: "PAYLOAD_TOO_LARGE" });
  if (e.type === "entity.parse.failed") return new DomainError("BAD_USER_INPUT", "malformed JSON body");
  if (typeof e.status === "number" && e.status >= 400 && e.status < 500)
    return new DomainError("BAD_USER_INPUT", "the request body could not be read (JSON in UTF-8)");
  return null;
}

/** Status of a body-parser refusal: 413 for size, else 400 (bodyParserError's reason says which). */
export function bodyParserStatus(error: DomainError): number {
  return error.reason === "PAYLOAD_TOO_LARGE" ? 413 : 400;
}
