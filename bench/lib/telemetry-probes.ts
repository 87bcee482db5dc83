/**
 * What the telemetry bench reads beside the tokens (bench/telemetry.bench.ts): the cores each
 * process used over a window, the worker's `engine stats` lines of a window summed, and a
 * stand-in OpenTelemetry collector that counts what the processes export.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { cpuWindow } from "./proc-cpu";

/** Telemetry on (METRICS and OTLP tracing to the sink) or off, for one phase. */
export type Telemetry = "on" | "off";

export interface CpuWindow {
  /** CPU seconds per second of the window (1 = one core busy) */
  api: number;
  worker: number;
  /** this process: the graphql-ws clients, the OTLP sink, the scrapes */
  bench: number;
  /** the whole machine (PostgreSQL, Redis and anything else running included) */
  machine: number;
  /** machine − API − worker − bench: PostgreSQL, Redis, and other work on the machine */
  rest: number;
}

export function cpuMeter(apiPid: number | undefined, workerPid: number) {
  const usage = cpuWindow({
    ...(apiPid ? { api: { pid: apiPid } } : {}),
    worker: { pid: workerPid },
    bench: { pid: process.pid },
  });
  return (): CpuWindow => {
    const { cores, machineCores } = usage.end();
    const [api, worker, bench, machine] = [cores.api, cores.worker, cores.bench, machineCores].map((x) => x ?? NaN);
    return { api, worker, bench, machine, rest: machine - api - worker - bench };
  };
}

/** The worker's `engine stats` lines (libs/engine engine-stats.ts, every 10 s) logged in a window, summed. */
export interface EngineWindow {
  seconds: number;
  steps: number;
  tokens: number;
  /** tokens per decode step: how full the batch was */
  tokensPerStep: number;
  stepMsAvg: number;
  flushMsAvg: number;
  /** ms per second the loop spent filling the batch, and waiting with nothing to step */
  fillMsPerSecond: number;
  idleMsPerSecond: number;
}

export function engineWindowOf(output: string, fromMs: number, toMs: number): EngineWindow {
  let seconds = 0;
  let steps = 0;
  let tokens = 0;
  let stepMs = 0;
  let flushMs = 0;
  let fillMs = 0;
  let idleMs = 0;
  for (const line of output.split("\n")) {
    if (!line.includes('"engine stats"')) continue;
    try {
      const o = JSON.parse(line) as Record<string, number> & { time: string | number };
      const at = typeof o.time === "string" ? Date.parse(o.time) : o.time; // ISO timestamps (libs/telemetry logger)
      if (!(at >= fromMs && at <= toMs)) continue;
      seconds += o.seconds;
      steps += o.steps;
      tokens += o.tokens;
      stepMs += o.stepMsAvg * o.steps;
      flushMs += o.flushMsAvg * o.steps;
      fillMs += o.fillMs;
      idleMs += o.idleMs;
    } catch {
      // not a JSON log line
    }
  }
  return {
    seconds,
    steps,
    tokens,
    tokensPerStep: tokens / steps,
    stepMsAvg: stepMs / steps,
    flushMsAvg: flushMs / steps,
    fillMsPerSecond: fillMs / seconds,
    idleMsPerSecond: idleMs / seconds,
  };
}

/** A stand-in OpenTelemetry collector: accepts OTLP/HTTP posts, counts them and their spans. */
export interface OtlpSink {
  endpoint: string;
  posts: number;
  spans: number;
  bytes: number;
  /** posts by service.name seen in the body */
  services: Set<string>;
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const sink = {
    posts: 0,
    spans: 0,
    bytes: 0,
    services: new Set<string>(),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      sink.posts++;
      sink.bytes += body.length;
      // Counted without parsing (this process shares the cores): one "spanId" key per span
      // ("parentSpanId" does not match, its S is upper-case).
      for (let i = body.indexOf('"spanId"'); i >= 0; i = body.indexOf('"spanId"', i + 8)) sink.spans++;
      for (const s of ["lite-llm-api", "lite-llm-worker"]) if (body.includes(`"${s}"`)) sink.services.add(s);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(sink, {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reset() {
      sink.posts = 0;
      sink.spans = 0;
      sink.bytes = 0;
      sink.services.clear();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** The variables of each side; nothing inherited from this process' environment decides either. */
export function envOf(telemetry: Telemetry, sink: OtlpSink, service: string): Record<string, string> {
  return telemetry === "on"
    ? {
        METRICS: "on",
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
        OTEL_TRACES_EXPORTER: "otlp",
        OTEL_SDK_DISABLED: "false",
        OTEL_SERVICE_NAME: service,
      }
    : { METRICS: "off", OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "" };
}
