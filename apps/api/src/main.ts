/** One API process (`npm run start:api`), configured only by environment variables. */
import "reflect-metadata";
import { createLogger } from "@lite/telemetry";
import { startTracing, tracingOptionsOf } from "@lite/tracing";
import { loadApiEnv } from "./env";
import { startApiServer } from "./server";

async function main(): Promise<void> {
  const env = loadApiEnv();
  const log = createLogger({ name: "api", level: env.LOG_LEVEL });
  // Before the server: every request's span goes to the configured exporter (nothing when off).
  const traceOpts = tracingOptionsOf(env, "lite-llm-api");
  const tracing = startTracing(traceOpts);
  if (tracing.enabled)
    log.info({ exporters: traceOpts.exporters, service: traceOpts.serviceName }, "OpenTelemetry traces on");
  const server = await startApiServer({ log });
  log.info({ url: server.url }, "GraphQL ready");
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "draining HTTP and WebSocket connections");
    server
      .close()
      .then(() => tracing.shutdown().catch((e) => log.warn({ err: e }, "could not flush traces")))
      .then(
        () => process.exit(0),
        (e) => {
          log.error({ err: e }, "error while stopping");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((e) => {
  process.stderr.write(`api failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
