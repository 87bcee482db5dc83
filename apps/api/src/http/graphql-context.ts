import type { Request, Response } from "express";
import { DomainError } from "@lite/core";
import { parseAuthorization } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { toGraphQLError } from "../errors";
import { authThrottleOf } from "./auth-throttle";

/** Where a request comes from, for per-source limits: the peer address (no proxy headers trusted). */
export function sourceOf(req: Pick<Request, "socket">): string {
  return req.socket.remoteAddress ?? "unknown";
}

/**
 * The context of one HTTP GraphQL request: its principal from the Authorization header
 * (failed authentication throttled per source, auth-throttle.ts). A refused key answers
 * with the error's code and status; an authentication lookup that fails (PostgreSQL or
 * Redis away) answers UNAVAILABLE, never a masked 500.
 */
export function httpContext(services: ApiServices) {
  const throttle = authThrottleOf(services);
  return async ({ req, res }: { req: Request; res: Response }): Promise<ApiContext> => {
    const requestId = String(res.locals.requestId);
    const secret = parseAuthorization(req.headers.authorization);
    let result;
    try {
      result = await throttle.authenticate(sourceOf(req), secret, { action: "auth.http", resource: "graphql" });
    } catch (e) {
      services.log.error({ err: e, requestId }, "authentication lookup failed");
      throw toGraphQLError(
        new DomainError("UNAVAILABLE", "authentication is unavailable; retry shortly", { retryAfterMs: 1000 }),
        requestId,
      );
    }
    if (!result.ok) throw toGraphQLError(result.error, requestId);
    return { services, principal: result.value, requestId };
  };
}
