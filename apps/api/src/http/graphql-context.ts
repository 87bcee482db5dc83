import type { Request, Response } from "express";
import type { Principal } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { traceContextOf } from "./trace-requests";

/** Where a request comes from, for per-source limits: the peer address (no proxy headers trusted). */
export function sourceOf(req: Pick<Request, "socket">): string {
  return req.socket.remoteAddress ?? "unknown";
}

/**
 * The context of one HTTP GraphQL request: the principal that authenticateFirst
 * (http-auth.ts) found before the body was read, and the `Idempotency-Key` header
 * (createCompletion checks it).
 */
export function httpContext(services: ApiServices) {
  return async ({ req, res }: { req: Request; res: Response }): Promise<ApiContext> => {
    const principal = res.locals.principal as Principal | undefined;
    if (!principal) throw new Error("/graphql reached Apollo without authenticateFirst");
    const idempotencyKeyHeader = req.get("idempotency-key");
    return {
      services,
      principal,
      requestId: String(res.locals.requestId),
      idempotencyKeyHeader,
      trace: traceContextOf(res),
    };
  };
}
