import "reflect-metadata";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { ApolloServer } from "@apollo/server";
import { expressMiddleware } from "@as-integrations/express5";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { WebSocketServer, type WebSocket } from "ws";
import { useServer } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import { DomainError, newId, type Clock } from "@lite/core";
import { pingDb } from "@lite/db";
import { pingRedis } from "@lite/redis";
import { ensureAdminKey, parseAuthorization, type Invalidation, type Principal } from "@lite/auth";
import { ensureDefaultPriceBook } from "@lite/billing";
import { bodyLimitBytes, parseApiEnv, type ApiEnv } from "./env";
import { createLogger } from "./logger";
import { createServices, type ApiServices } from "./services";
import { buildApiSchema } from "./schema";
import type { ApiContext } from "./context";
import { formatError, toGraphQLError } from "./errors";
import { operationPlugin } from "./http/graphql-plugin";
import { registerModelsFromDir } from "./catalog/model-registry";

export interface StartApiServerOptions {
  /** variables over process.env (tests pass DATABASE_URL, REDIS_URL, REDIS_PREFIX…) */
  env?: Record<string, string | undefined>;
  /** overrides PORT; 0 = any free port */
  port?: number;
  /** overrides HOST */
  host?: string;
  clock?: Clock;
  log?: Logger;
}

export interface RunningApiServer {
  /** http://host:port/graphql */
  url: string;
  /** ws://host:port/graphql */
  wsUrl: string;
  /** http://host:port */
  baseUrl: string;
  port: number;
  env: ApiEnv;
  services: ApiServices;
  /** true once start-up work (admin key, price book, models) has succeeded */
  bootstrapped(): boolean;
  /** drains HTTP and WebSocket, stops the audit writer (after a flush), closes connections */
  close(): Promise<void>;
}

/** Start-up work; retried in the background while PostgreSQL or Redis is not there yet. */
async function bootstrap(s: ApiServices): Promise<void> {
  if (s.env.ADMIN_API_KEY) {
    const admin = await ensureAdminKey(s.db, s.env.ADMIN_API_KEY);
    if (admin.created) {
      await s.audit.record({
        actor: "system",
        action: "apikey.create",
        resource: `apikey:${admin.apiKeyId}`,
        decision: "OK",
        reason: "bootstrap ADMIN_API_KEY",
      });
    }
    if (admin.revoked) s.log.warn({ apiKeyId: admin.apiKeyId }, "ADMIN_API_KEY names a revoked key: it stays revoked");
  }
  await ensureDefaultPriceBook(s.db);
  await registerModelsFromDir(s.db, s.audit, {
    modelDir: s.env.MODEL_DIR,
    defaultModel: s.env.DEFAULT_MODEL,
    publicKey: s.env.MODEL_PUBLIC_KEY,
    log: s.log,
  });
}

const KNOWN_ROUTES = new Set(["/graphql", "/healthz", "/readyz", "/metrics"]);

function jsonError(res: Response, status: number, code: string, message: string, requestId?: string): void {
  res
    .status(status)
    .type("application/json")
    .send(JSON.stringify({ errors: [{ message, extensions: { code, ...(requestId ? { requestId } : {}) } }] }));
}

export async function startApiServer(options: StartApiServerOptions = {}): Promise<RunningApiServer> {
  const env = parseApiEnv({
    ...process.env,
    ...options.env,
    ...(options.port !== undefined ? { PORT: String(options.port) } : {}),
    ...(options.host !== undefined ? { HOST: options.host } : {}),
  });
  const log = options.log ?? createLogger(env.LOG_LEVEL);
  const services = await createServices(env, log, { clock: options.clock });
  const schema = await buildApiSchema();

  let ready = false;
  let stopping = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const attemptBootstrap = async (): Promise<void> => {
    try {
      await bootstrap(services);
      await services.auth.start();
      services.auditWriter.start();
      ready = true;
      log.info("api bootstrapped");
    } catch (e) {
      if (stopping) return;
      log.error({ err: e }, "start-up work failed (PostgreSQL or Redis unreachable?); retrying in 2 s");
      retryTimer = setTimeout(() => void attemptBootstrap(), 2000);
    }
  };
  await attemptBootstrap();

  const app = express();
  app.disable("x-powered-by");
  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = newId("request");
    res.locals.requestId = requestId;
    res.setHeader("x-request-id", requestId);
    const started = process.hrtime.bigint();
    const route = KNOWN_ROUTES.has(req.path) ? req.path : "other";
    res.on("finish", () => {
      services.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      log.debug(
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
  });
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const [postgres, redis] = await Promise.all([pingDb(services.db), pingRedis(services.redis)]);
    const ok = postgres && redis && ready && !stopping;
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "unavailable", postgres, redis, bootstrapped: ready });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  });

  const httpServer = http.createServer(app);
  const wsServer = new WebSocketServer({ server: httpServer, path: "/graphql" });

  /** A refused key is counted, and audited when a key was presented at all. */
  const recordAuthFailure = async (error: DomainError, secret: string | null, action: string, resource: string) => {
    const reason = error.reason ?? error.code;
    services.metrics.authFailures.inc({ reason });
    if (secret) await services.audit.record({ actor: "anonymous", action, resource, decision: "DENY", reason });
  };

  // WebSocket connections, so that revocation and suspension close live sockets too.
  const sockets = new Map<WebSocket, { principal: Principal; secret: string }>();
  const unsubscribeInvalidations = services.auth.onInvalidate((inv: Invalidation) => {
    for (const [socket, conn] of sockets) {
      const p = conn.principal;
      const hit =
        inv.kind === "all" || (inv.kind === "key" ? p.apiKeyId === inv.apiKeyId : p.tenantId === inv.tenantId);
      if (!hit) continue;
      void services.auth.authenticate(conn.secret).then(
        (r) => {
          if (!r.ok)
            socket.close(
              r.error.code === "FORBIDDEN" ? 4403 : 4401,
              r.error.code === "FORBIDDEN" ? "Forbidden" : "Unauthorized",
            );
        },
        () => undefined,
      );
    }
  });

  const wsCleanup = useServer<Record<string, unknown>, { principal?: Principal; requestId?: string }>(
    {
      schema,
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const secret = parseAuthorization(params.authorization ?? params.Authorization);
        const result = await services.auth.authenticate(secret);
        const socket = ctx.extra.socket;
        if (!result.ok) {
          await recordAuthFailure(result.error, secret, "auth.websocket", "graphql-ws");
          const forbidden = result.error.code === "FORBIDDEN";
          socket.close(forbidden ? 4403 : 4401, forbidden ? "Forbidden" : "Unauthorized");
          return false;
        }
        ctx.extra.principal = result.value;
        sockets.set(socket, { principal: result.value, secret: secret as string });
        socket.once("close", () => sockets.delete(socket));
        return true;
      },
      context: (ctx): ApiContext => ({
        services,
        principal: ctx.extra.principal as Principal,
        requestId: newId("request"),
      }),
    },
    wsServer,
  );

  const apollo = new ApolloServer<ApiContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: true,
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: env.SHUTDOWN_GRACE_MS }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsCleanup.dispose();
            },
          };
        },
      },
      operationPlugin(services),
    ],
  });
  await apollo.start();

  app.use(
    "/graphql",
    express.json({ limit: bodyLimitBytes(env) }),
    expressMiddleware(apollo, {
      context: async ({ req, res }): Promise<ApiContext> => {
        const requestId = String(res.locals.requestId);
        const secret = parseAuthorization(req.headers.authorization);
        let result;
        try {
          result = await services.auth.authenticate(secret);
        } catch (e) {
          log.error({ err: e, requestId }, "authentication lookup failed");
          throw toGraphQLError(
            new DomainError("UNAVAILABLE", "authentication is unavailable; retry shortly", { retryAfterMs: 1000 }),
            requestId,
          );
        }
        if (!result.ok) {
          await recordAuthFailure(result.error, secret, "auth.http", "graphql");
          throw toGraphQLError(result.error, requestId);
        }
        return { services, principal: result.value, requestId };
      },
    }),
  );
  // Body parser failures answer JSON, never an HTML page.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = err as { type?: string; status?: number };
    const requestId = String(res.locals.requestId);
    if (e.type === "entity.too.large" || e.status === 413) {
      return jsonError(res, 413, "PAYLOAD_TOO_LARGE", `request body over ${bodyLimitBytes(env)} bytes`, requestId);
    }
    if (e.type === "entity.parse.failed" || e.status === 400)
      return jsonError(res, 400, "BAD_REQUEST", "malformed JSON body", requestId);
    log.error({ err, requestId }, "unhandled HTTP error");
    return jsonError(res, 500, "INTERNAL_SERVER_ERROR", "Internal server error", requestId);
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(env.PORT, env.HOST, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const host = env.HOST === "0.0.0.0" || env.HOST === "::" ? "127.0.0.1" : env.HOST;
  log.info({ port }, "api listening");

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}/graphql`,
    wsUrl: `ws://${host}:${port}/graphql`,
    baseUrl: `http://${host}:${port}`,
    port,
    env,
    services,
    bootstrapped: () => ready,
    close() {
      closing ??= (async () => {
        stopping = true;
        if (retryTimer) clearTimeout(retryTimer);
        unsubscribeInvalidations();
        await apollo.stop();
        wsServer.close();
        await services.auditWriter.stop();
        await services.auth.stop();
        await services.close();
      })();
      return closing;
    },
  };
}
