import type { Request, Response } from "express";
import { parseAuthorization } from "@lite/auth";
import { retryAfterSeconds } from "../errors";
import type { ApiServices } from "../services";
import { authThrottleOf } from "./auth-throttle";
import { sourceOf } from "./graphql-context";

/** A refusal in GraphQL's JSON error shape (as the API's other plain endpoints answer). */
export function jsonError(res: Response, status: number, code: string, message: string, requestId?: string): void {
  res
    .status(status)
    .type("application/json")
    .send(JSON.stringify({ errors: [{ message, extensions: { code, ...(requestId ? { requestId } : {}) } }] }));
}

/**
 * The key of an `Authorization` header: `Bearer <key>` (or a bare key) as everywhere, and,
 * when `basic` is set, `Basic base64(user:password)` with the key as the password (or as the
 * user when the password is empty), so a browser's own login prompt can open an operator page
 * whose scripts send no header of their own (bull-board).
 */
export function operatorSecret(header: unknown, basic: boolean): string | null {
  if (basic && typeof header === "string") {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
    if (m) {
      const decoded = Buffer.from(m[1], "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const user = colon < 0 ? decoded : decoded.slice(0, colon);
      const password = colon < 0 ? "" : decoded.slice(colon + 1);
      const key = password || user;
      return key.length > 0 ? key : null;
    }
  }
  return parseAuthorization(header);
}

export interface OperatorPage {
  /** what the audit of a failed authentication names, e.g. "metrics" */
  resource: string;
  /** shown in refusals, e.g. "/metrics" */
  path: string;
  /** accept HTTP Basic credentials and ask a browser for them on 401 (WWW-Authenticate) */
  basic?: boolean;
}

/**
 * Operator-only endpoints (/metrics, /admin/queues) list every tenant's traffic: only an
 * ADMIN key may read them (RUNTIME.md allows an ADMIN key or an operator port; this API does
 * the former). Answers 401 without a valid key, 403 for another role, 429 when failed
 * authentications from the source are throttled, 503 when the key cannot be checked; true
 * when it answered.
 */
export async function refusedAsOperator(
  services: ApiServices,
  req: Request,
  res: Response,
  page: OperatorPage,
): Promise<boolean> {
  const requestId = String(res.locals.requestId);
  const secret = operatorSecret(req.headers.authorization, page.basic === true);
  let result;
  try {
    const audit = { action: `auth.${page.resource}`, resource: page.resource };
    result = await authThrottleOf(services).authenticate(sourceOf(req), secret, audit);
  } catch (e) {
    services.log.error({ err: e, requestId }, `authentication lookup failed (${page.path})`);
    res.setHeader("retry-after", "1");
    jsonError(res, 503, "UNAVAILABLE", "authentication is unavailable; retry shortly", requestId);
    return true;
  }
  if (!result.ok) {
    const { code, retryAfterMs } = result.error;
    const status = code === "FORBIDDEN" ? 403 : code === "RATE_LIMITED" ? 429 : 401;
    if (retryAfterMs !== undefined) res.setHeader("retry-after", String(retryAfterSeconds(retryAfterMs)));
    if (status === 401 && page.basic) {
      res.setHeader(
        "www-authenticate",
        'Basic realm="lite-llm-runtime operators (password: an ADMIN API key)", charset="UTF-8"',
      );
    }
    jsonError(res, status, code, result.error.message, requestId);
    return true;
  }
  if (result.value.role !== "ADMIN") {
    jsonError(res, 403, "FORBIDDEN", `role ${result.value.role} may not read ${page.path}`, requestId);
    return true;
  }
  res.locals.principal = result.value;
  return false;
}
