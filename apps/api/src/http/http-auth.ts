import type { NextFunction, Request, Response } from "express";
import { DomainError } from "@lite/core";
import { parseAuthorization, type Principal } from "@lite/auth";
import type { ApiServices } from "../services";
import { retryAfterSeconds, toGraphQLError } from "../errors";
import { authThrottleOf } from "./auth-throttle";
import { sourceOf } from "./graphql-context";
import { RateBudget } from "./rate-budget";

/** Answers that mean "the client sent something unreadable or invalid": they spend its client-error budget. */
const CLIENT_ERROR_STATUSES = new Set([400, 405, 413, 415]);

/** Bytes of a refused body worth one unit of the client-error budget. */
export const REFUSED_BYTES_PER_UNIT = 16 * 1024;

/**
 * What a refused request costs the budget: one unit, or one per REFUSED_BYTES_PER_UNIT of
 * its body (reading and parsing a 250 KB body refused in the end costs the API as much as
 * fifteen small ones).
 */
function refusalUnits(req: Request): number {
  const bytes = Number(req.headers["content-length"]) || 0;
  return Math.max(1, Math.ceil(bytes / REFUSED_BYTES_PER_UNIT));
}

/** How a refusal is written: GraphQL's shape by default, OpenAI's for /v1 (openai/openai.errors.ts). */
export type Answer = (res: Response, error: DomainError, requestId: string) => void;

/** The error as Apollo would answer it: same body, status and Retry-After. */
function answerGraphql(res: Response, error: DomainError, requestId: string): void {
  const g = toGraphQLError(error, requestId);
  const { http, ...extensions } = g.extensions as { http?: { status?: number; headers?: Map<string, string> } };
  for (const [name, value] of http?.headers ?? []) res.setHeader(name, value);
  res
    .status(http?.status ?? 400)
    .type("application/json")
    .send(JSON.stringify({ errors: [{ message: g.message, extensions }] }));
}

/**
 * A request refused for abuse (throttled authentication, client-error budget spent) is
 * answered after min(Retry-After, REFUSAL_TARPIT_MS), on a connection then closed: a client
 * that ignores Retry-After gets at most one answer per connection per tarpit, and its body is
 * never parsed. Retry-After in whole seconds, as its header says: the budget's own wait is
 * often shorter (200 ms at the default 5 refills a second), and answering after that let a
 * flooding client come back five times a second on each connection.
 */
function refuse(res: Response, error: DomainError, requestId: string, tarpitMs: number, answer: Answer): void {
  if (error.code !== "RATE_LIMITED") return answer(res, error, requestId);
  res.setHeader("connection", "close");
  const delay = Math.min(retryAfterSeconds(error.retryAfterMs) * 1000, tarpitMs);
  setTimeout(() => {
    if (!res.writableEnded && !res.destroyed) answer(res, error, requestId);
  }, delay).unref();
}

const budgets = new WeakMap<object, RateBudget>();

/** The one client-error budget of an API process: /graphql and /v1 spend the same one. */
function clientErrorBudgetOf(services: ApiServices): RateBudget {
  let b = budgets.get(services);
  if (!b) {
    b = new RateBudget(services.env.CLIENT_ERRORS_PER_SECOND, services.env.CLIENT_ERROR_BURST);
    budgets.set(services, b);
  }
  return b;
}

/**
 * /graphql over HTTP, before its body is read: the key (failed authentication throttled per
 * source, auth-throttle.ts), then the tenant's client-error budget: a tenant (an operator:
 * a key) whose requests were refused as malformed or invalid (400, 405, 413, 415) past
 * CLIENT_ERROR_BURST units (one per refusal, or one per 16 KiB of its body), refilled at
 * CLIENT_ERRORS_PER_SECOND, is answered RATE_LIMITED
 * (reason CLIENT_ERRORS) without its body being parsed until the budget refills. So a request
 * without a valid key, or from a tenant flooding refused requests, costs no JSON parse, no
 * GraphQL parse and no audit row. The principal goes on in `res.locals.principal`.
 */
export function authenticateFirst(services: ApiServices, opts: { resource?: string; answer?: Answer } = {}) {
  const answer = opts.answer ?? answerGraphql;
  const resource = opts.resource ?? "graphql";
  const throttle = authThrottleOf(services);
  const budget = clientErrorBudgetOf(services);
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const requestId = String(res.locals.requestId);
    const secret = parseAuthorization(req.headers.authorization);
    let result;
    try {
      result = await throttle.authenticate(sourceOf(req), secret, { action: "auth.http", resource });
    } catch (e) {
      services.log.error({ err: e, requestId }, "authentication lookup failed");
      const unavailable = new DomainError("UNAVAILABLE", "authentication is unavailable; retry shortly", {
        retryAfterMs: 1000,
      });
      return answer(res, unavailable, requestId);
    }
    if (!result.ok) {
      if (result.error.code === "RATE_LIMITED") services.metrics.httpRefusals.inc({ reason: "AUTH_FAILURES" });
      return refuse(res, result.error, requestId, services.env.REFUSAL_TARPIT_MS, answer);
    }
    const principal: Principal = result.value;
    const waitMs = budget.wait(principal);
    if (waitMs > 0) {
      services.metrics.httpRefusals.inc({ reason: "CLIENT_ERRORS" });
      const error = new DomainError("RATE_LIMITED", "too many refused requests from this tenant; retry later", {
        reason: "CLIENT_ERRORS",
        retryAfterMs: waitMs,
      });
      return refuse(res, error, requestId, services.env.REFUSAL_TARPIT_MS, answer);
    }
    res.locals.principal = principal;
    res.on("finish", () => {
      if (CLIENT_ERROR_STATUSES.has(res.statusCode)) budget.charge(principal, refusalUnits(req));
    });
    next();
  };
}
