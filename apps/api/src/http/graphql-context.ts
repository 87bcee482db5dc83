import type { Request, Response } from "express";
import { DomainError } from "@lite/core";
import { parseAuthorization } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { toGraphQLError } from "../errors";

/** A refused key is counted, and audited when a key was presented at all (HTTP and WebSocket alike). */
export async function recordAuthFailure(
  services: ApiServices,
  error: DomainError,
  secret: string | null,
  action: string,
  resource: string,
): Promise<void> {
  const reason = error.reason ?? error.code;
  services.metrics.authFailures.inc({ reason });
  if (secret) await services.audit.record({ actor: "anonymous", action, resource, decision: "DENY", reason });
}

/**
 * The context of one HTTP GraphQL request: its principal from the Authorization header.
 * A refused key answers with the error's code and status; an authentication lookup that
 * fails (PostgreSQL or Redis away) answers UNAVAILABLE, never a masked 500.
 */
export function httpContext(services: ApiServices) {
  return async ({ req, res }: { req: Request; res: Response }): Promise<ApiContext> => {
    const requestId = String(res.locals.requestId);
    const secret = parseAuthorization(req.headers.authorization);
    let result;
    try {
      result = await services.auth.authenticate(secret);
    } catch (e) {
      services.log.error({ err: e, requestId }, "authentication lookup failed");
      throw toGraphQLError(
        new DomainError("UNAVAILABLE", "authentication is unavailable; retry shortly", { retryAfterMs: 1000 }),
        requestId,
      );
    }
    if (!result.ok) {
      await recordAuthFailure(services, result.error, secret, "auth.http", "graphql");
      throw toGraphQLError(result.error, requestId);
    }
    return { services, principal: result.value, requestId };
  };
}
