import { parseEnv } from "@lite/config";
import { context, trace } from "@opentelemetry/api";
import { contextOfTraceparent, ROOT_CONTEXT, traceparentOf, withSpan } from "./spans";
import { TracingEnvSchema, tracingOptionsOf } from "./tracing-env";
import { InMemorySpanExporter, startTracing } from "./tracing-setup";

const opts = (env: Record<string, string>) => tracingOptionsOf(parseEnv(TracingEnvSchema, env), "svc");

describe("OTEL_* variables", () => {
  it("is off when none is set, or when disabled or exporter none", () => {
    expect(opts({}).exporters).toEqual([]);
    expect(opts({ OTEL_SERVICE_NAME: "x" }).exporters).toEqual([]);
    expect(opts({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }).exporters).toEqual([]);
    expect(opts({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" }).exporters).toEqual([]);
  });

  it("turns OTLP on with an endpoint; signal-specific variables win", () => {
    const o = opts({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-a=1",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-a=2",
      OTEL_SERVICE_NAME: "api-eu",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
    });
    expect(o).toEqual({
      serviceName: "api-eu",
      exporters: ["otlp"],
      otlpUrl: "http://collector:4318/v1/traces",
      otlpHeaders: { authorization: "Bearer abc", "x-a": "2" },
      otlpTimeoutMs: 10000,
      resourceAttributes: { "deployment.environment": "prod" },
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.25,
    });
    expect(opts({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t.example/ingest" }).otlpUrl).toBe(
      "https://t.example/ingest",
    );
    expect(opts({ OTEL_TRACES_EXPORTER: "console" })).toMatchObject({ exporters: ["console"], serviceName: "svc" });
  });

  it("names the variable that is wrong", () => {
    expect(() => opts({ OTEL_TRACES_EXPORTER: "jaeger" })).toThrow(
      /OTEL_TRACES_EXPORTER must list otlp, console, none/,
    );
    expect(() => opts({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => opts({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/json/,
    );
    expect(() => opts({ OTEL_TRACES_SAMPLER_ARG: "1.5" })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/,
    );
    expect(() => opts({ OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => opts({ OTEL_EXPORTER_OTLP_HEADERS: "=x" })).toThrow(/OTEL_EXPORTER_OTLP_HEADERS/);
    expect(() => opts({ OTEL_EXPORTER_OTLP_TIMEOUT: "0" })).toThrow(/OTEL_EXPORTER_OTLP_TIMEOUT/);
  });
});

describe("startTracing", () => {
  it("registers nothing when off: spans do not record and no context is carried", async () => {
    const t = startTracing(opts({}));
    expect(t.enabled).toBe(false);
    await withSpan("x", {}, ROOT_CONTEXT, async (span, ctx) => {
      expect(span.isRecording()).toBe(false);
      expect(traceparentOf(ctx)).toBeUndefined();
    });
  });

  it("on: a span's traceparent, carried and extracted, parents the next process' span", async () => {
    const exporter = new InMemorySpanExporter();
    const t = startTracing(opts({}), { exporters: [exporter] });
    try {
      let carried: string | undefined;
      await withSpan("producer", {}, ROOT_CONTEXT, async (_span, ctx) => {
        carried = traceparentOf(ctx);
      });
      expect(carried).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      await withSpan("consumer", {}, contextOfTraceparent(carried), async () => undefined);
      const [producer, consumer] = exporter.getFinishedSpans();
      expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(producer.resource.attributes["service.name"]).toBe("svc");
    } finally {
      await t.shutdown();
    }
    // shut down: the global provider is gone again
    expect(trace.getSpan(context.active())).toBeUndefined();
    expect(trace.getTracer("x").startSpan("y").isRecording()).toBe(false);
  });

  it("on: registers no context manager (no AsyncLocalStorage hooks): parents are passed, the active context stays the root", async () => {
    const t = startTracing(opts({}), { exporters: [new InMemorySpanExporter()] });
    try {
      await withSpan("outer", {}, ROOT_CONTEXT, async (span, ctx) => {
        expect(span.isRecording()).toBe(true);
        expect(trace.getSpan(ctx)).toBe(span);
        // with AsyncLocalStorage registered, context.with would make ctx the active context
        context.with(ctx, () => expect(trace.getSpan(context.active())).toBeUndefined());
        await Promise.resolve();
        expect(context.active()).toBe(ROOT_CONTEXT);
      });
    } finally {
      await t.shutdown();
    }
  });
});
