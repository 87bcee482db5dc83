import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { expressMiddleware } from "@as-integrations/express5";
import type { ApolloServer } from "@apollo/server";
import { newId } from "@lite/core";
import { pingDb } from "@lite/db";
import { pingRedis } from "@lite/redis";
import { bodyLimitBytes } from "../env";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { httpContext } from "./graphql-context";
import { authenticateFirst } from "./http-auth";
import { jsonError, refusedAsOperator } from "./operator-auth";
import { openAiRouter } from "../openai/openai.router";
import { traceRequests } from "./trace-requests";

/** Routes counted by name in the request metric; anything else counts as "other" (bounded labels). */
const KNOWN_ROUTES = new Set([
  "/graphql",
  "/healthz",
  "/readyz",
  "/metrics",
  "/",
  "/schema.graphql",
  "/v1/completions",
  "/v1/chat/completions",
  "/v1/models",
  "/admin/queues",
  "/admin/queues/api/queues",
  "/dashboard",
]);

/** What /readyz reports besides the pings. */
export interface Readiness {
  bootstrapped(): boolean;
  stopping(): boolean;
}

/** Every request gets an id (answered in x-request-id), is counted by route and status, and logged at debug. */
function requestIds(services: ApiServices) {
  return (req: Request, res: Response, next: NextFunction) => {
    const requestId = newId("request");
    res.locals.requestId = requestId;
    res.setHeader("x-request-id", requestId);
    const started = process.hrtime.bigint();
    const route = KNOWN_ROUTES.has(req.path) ? req.path : "other";
    res.on("finish", () => {
      services.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      services.log.debug(
        {
          requestId,
          method: req.method,
          route,
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        "http request",
      );
    });
    next();
  };
}

/** The express app with request ids and the plain endpoints: /healthz, /readyz, /metrics. */
export function createHttpApp(services: ApiServices, readiness: Readiness): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(requestIds(services));
  app.use(traceRequests());
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const [postgres, redis] = await Promise.all([pingDb(services.db), pingRedis(services.redis)]);
    const bootstrapped = readiness.bootstrapped();
    const ok = postgres && redis && bootstrapped && !readiness.stopping();
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "unavailable", postgres, redis, bootstrapped });
  });
  app.get("/metrics", async (req, res) => {
    if (await refusedAsOperator(services, req, res, { resource: "metrics", path: "/metrics" })) return;
    res.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  });
  // The OpenAI-compatible REST API (openai/openai.router.ts): same keys, admission and queue as /graphql.
  app.use("/v1", openAiRouter(services));
  return app;
}

/** POST/GET /graphql through Apollo, then the handler that answers body-parser failures in JSON. */
export function mountGraphql(app: Express, apollo: ApolloServer<ApiContext>, services: ApiServices): void {
  const limit = bodyLimitBytes(services.env);
  app.use(
    "/graphql",
    authenticateFirst(services),
    express.json({ limit }),
    expressMiddleware(apollo, { context: httpContext(services) }),
  );
  // Body parser failures answer JSON, never an HTML page.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = err as { type?: string; status?: number };
    const requestId = String(res.locals.requestId);
    if (e.type === "entity.too.large" || e.status === 413) {
      return jsonError(res, 413, "PAYLOAD_TOO_LARGE", `request body over ${limit} bytes`, requestId);
    }
    if (e.type === "entity.parse.failed" || e.status === 400)
      return jsonError(res, 400, "BAD_REQUEST", "malformed JSON body", requestId);
    if (e.type === "encoding.unsupported" || e.type === "charset.unsupported" || e.status === 415) {
      return jsonError(
        res,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "body encoding or charset not supported (JSON in UTF-8; gzip, deflate or br)",
        requestId,
      );
    }
    if (typeof e.status === "number" && e.status >= 400 && e.status < 500) {
      return jsonError(res, e.status, "BAD_REQUEST", "the request could not be read", requestId);
    }
    services.log.error({ err, requestId }, "unhandled HTTP error");
    return jsonError(res, 500, "INTERNAL_SERVER_ERROR", "Internal server error", requestId);
  });
}
