import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** Serves the worker's registry in Prometheus text format on GET /metrics (and /healthz). */
export async function startMetricsServer(
  registry: Registry,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/metrics") {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (e: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(e));
        },
      );
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
