import "reflect-metadata";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ApolloServer } from "@apollo/server";
import type { Logger } from "pino";
import type { Clock } from "@lite/core";
import { createLogger } from "@lite/telemetry";
import { parseApiEnv, type ApiEnv } from "./env";
import { createServices, type ApiServices } from "./services";
import { buildApiSchema } from "./schema";
import type { ApiContext } from "./context";
import { startApollo } from "./http/apollo";
import { startBootstrap, type Bootstrap } from "./http/bootstrap";
import { createHttpApp, mountGraphql } from "./http/http-app";
import { mountLandingPage } from "./http/landing-page";
import { mountBullBoard } from "./http/bull-board";
import { mountDashboard } from "./http/dashboard";
import { startGraphqlWs, type GraphqlWs } from "./http/graphql-ws";

/**
 * The API process's composition: env → logger → services → start-up work → HTTP app,
 * graphql-ws and Apollo on one HTTP server → listen; and the reverse on close. Each piece
 * lives in ./http; nothing here decides anything.
 */

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

/** Process env with the test's overrides on top. */
function apiEnvOf(options: StartApiServerOptions): ApiEnv {
  return parseApiEnv({
    ...process.env,
    ...options.env,
    ...(options.port !== undefined ? { PORT: String(options.port) } : {}),
    ...(options.host !== undefined ? { HOST: options.host } : {}),
  });
}

async function listen(httpServer: http.Server, env: ApiEnv): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(env.PORT, env.HOST, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  return (httpServer.address() as AddressInfo).port;
}

interface ServerParts {
  services: ApiServices;
  bootstrap: Bootstrap;
  ws: GraphqlWs;
  apollo: ApolloServer<ApiContext>;
}

/**
 * Shutdown, in this order: no more start-up retries or socket revocation checks; Apollo
 * drains HTTP (in-flight requests get SHUTDOWN_GRACE_MS) and disposes the subscriptions;
 * the WebSocket server closes; the audit writer flushes and stops; then the connections.
 */
async function shutdown(p: ServerParts): Promise<void> {
  p.bootstrap.stop();
  p.ws.stopWatchingKeys();
  await p.apollo.stop();
  p.ws.close();
  await p.services.auditWriter.stop();
  await p.services.auth.stop();
  await p.services.close();
}

export async function startApiServer(options: StartApiServerOptions = {}): Promise<RunningApiServer> {
  const env = apiEnvOf(options);
  const log = options.log ?? createLogger({ name: "api", level: env.LOG_LEVEL });
  const services = await createServices(env, log, { clock: options.clock });
  const schema = await buildApiSchema();
  const bootstrap = await startBootstrap(services);

  let stopping = false;
  const app = createHttpApp(services, { bootstrapped: bootstrap.ready, stopping: () => stopping });
  const httpServer = http.createServer(app);
  const ws = startGraphqlWs(httpServer, schema, services);
  const apollo = await startApollo(schema, httpServer, ws, services);
  mountLandingPage(app, schema);
  mountBullBoard(app, services);
  mountDashboard(app);
  mountGraphql(app, apollo, services);

  const port = await listen(httpServer, env);
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
    bootstrapped: bootstrap.ready,
    close() {
      stopping = true;
      closing ??= shutdown({ services, bootstrap, ws, apollo });
      return closing;
    },
  };
}
