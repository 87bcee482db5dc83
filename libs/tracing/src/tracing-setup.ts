import { context, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { assertNever } from "@lite/core";
import type { TracesSampler, TracingOptions } from "./tracing-env";

/** The process' tracing: `enabled` false when nothing was registered (the API's no-op tracer answers every span). */
export interface Tracing {
  readonly enabled: boolean;
  /** exports what is buffered */
  forceFlush(): Promise<void>;
  /** flushes, then unregisters the provider; idempotent */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, forceFlush: async () => undefined, shutdown: async () => undefined };

export interface StartTracingExtras {
  /** exporters beside those the options name, each with a SimpleSpanProcessor (tests: InMemorySpanExporter) */
  exporters?: SpanExporter[];
}

/**
 * Registers a global tracer provider (W3C trace context) when the
 * options name an exporter (or `extras` gives one); otherwise registers nothing: every span
 * the libraries start is @opentelemetry/api's non-recording span and no context is injected
 * into jobs, so tracing off costs one no-op call per span. No context manager is registered:
 * `context.active()` is always the root context and every span is given its parent
 * (spans.ts withSpan, the API's request span in res.locals, the worker's completion-trace.ts).
 * That saves AsyncLocalStorage, whose async hooks (Node 20) run on every promise the process
 * creates: about 0.03 cores of the API under the telemetry bench's load.
 */
export function startTracing(opts: TracingOptions, extras: StartTracingExtras = {}): Tracing {
  const processors: SpanProcessor[] = [];
  for (const name of opts.exporters) {
    switch (name) {
      case "otlp":
        processors.push(
          new BatchSpanProcessor(
            new OTLPTraceExporter({ url: opts.otlpUrl, headers: opts.otlpHeaders, timeoutMillis: opts.otlpTimeoutMs }),
          ),
        );
        break;
      case "console":
        processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
        break;
      default:
        assertNever(name);
    }
  }
  for (const e of extras.exporters ?? []) processors.push(new SimpleSpanProcessor(e));
  if (processors.length === 0) return OFF;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ ...opts.resourceAttributes, [ATTR_SERVICE_NAME]: opts.serviceName }),
    sampler: samplerOf(opts.sampler, opts.samplerRatio),
    spanProcessors: processors,
  });
  provider.register({ propagator: new W3CTraceContextPropagator(), contextManager: null });
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= provider.shutdown().finally(() => {
        trace.disable();
        context.disable();
        propagation.disable();
      })),
  };
}

function samplerOf(name: TracesSampler, ratio: number): Sampler {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return assertNever(name);
  }
}

/** For tests and tools that read the spans of their own process (startTracing `extras.exporters`). */
export { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
