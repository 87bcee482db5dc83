import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

/** Whether a request's Authorization header may read /metrics. */
export type MetricsAuthorizer = (authorization: string | undefined) => Promise<"ok" | "unauthenticated" | "forbidden">;

/**
 * Serves the worker's registry in Prometheus text format on GET /metrics, to an ADMIN key
 * only (as the API's /metrics: the series name tenants and their traffic): 401 without a
 * valid key, 403 for another role, 503 when the key cannot be checked. /healthz is open.
 * The port: `port` when free; when it is taken (several workers on one host with the
 * default), any free port, with a warning. Either way the port is in the "worker ready" line.
 */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  authorize: MetricsAuthorizer,
  log?: Logger,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/metrics") {
      void serveMetrics(registry, authorize, req, res);
      return;
    }
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    res.writeHead(404);
    res.end();
  });
  try {
    await listen(server, port);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" || port === 0) throw e;
    await listen(server, 0);
    log?.warn(
      { wantedPort: port, metricsPort: (server.address() as AddressInfo).port },
      "WORKER_METRICS_PORT is taken: serving /metrics on a free port instead",
    );
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
}

async function serveMetrics(
  registry: Registry,
  authorize: MetricsAuthorizer,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  let verdict;
  try {
    verdict = await authorize(req.headers.authorization);
  } catch {
    res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" });
    res.end("authentication is unavailable; retry shortly");
    return;
  }
  if (verdict !== "ok") {
    const status = verdict === "forbidden" ? 403 : 401;
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(status === 403 ? "only an ADMIN key may read /metrics" : "an ADMIN API key is required");
    return;
  }
  try {
    const text = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType });
    res.end(text);
  } catch (e) {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(e));
  }
}
