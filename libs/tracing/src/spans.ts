import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
} from "@opentelemetry/api";

export { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace, type Attributes, type Context, type Span };

/** The instrumentation scope of every span of this runtime. */
export const TRACER_NAME = "lite-llm";

/**
 * Span attributes of this runtime. Only ids, names, counts and outcomes: never prompt or
 * output text, API keys or other secrets.
 */
export const ATTR = {
  tenantId: "lite.tenant.id",
  completionId: "lite.completion.id",
  model: "lite.model",
  mode: "lite.mode",
  tiers: "lite.tiers",
  degraded: "lite.degraded",
  maxTokens: "lite.max_tokens",
  inputTokens: "lite.input_tokens",
  outputTokens: "lite.output_tokens",
  resumedTokens: "lite.resumed_tokens",
  finishReason: "lite.finish_reason",
  status: "lite.status",
  errorCode: "lite.error_code",
  workerId: "lite.worker.id",
  operation: "graphql.operation.name",
  operationType: "graphql.operation.type",
} as const;

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/**
 * Runs `fn` inside a new span, a child of `parent`, ending it when `fn` settles; a throw marks
 * it ERROR with the error's class (not its message, which may hold input). `fn` gets the span
 * and the context that names it, to parent further spans with: no context manager is
 * registered (tracing-setup.ts), so parents are always passed, never found. No parent: the
 * span starts a new trace.
 */
export async function withSpan<T>(
  name: string,
  options: SpanOptions,
  parent: Context | undefined,
  fn: (span: Span, ctx: Context) => Promise<T>,
): Promise<T> {
  const base = parent ?? ROOT_CONTEXT;
  const span = tracer().startSpan(name, options, base);
  try {
    return await fn(span, trace.setSpan(base, span));
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.name : "error" });
    throw e;
  } finally {
    span.end();
  }
}

/**
 * The W3C `traceparent` of the span `ctx` names (`00-<trace id>-<span id>-<flags>`), to carry in a
 * job payload; undefined when tracing is off or no span is recording.
 */
export function traceparentOf(ctx: Context): string | undefined {
  if (!trace.getSpan(ctx)?.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a W3C `traceparent` names (ROOT_CONTEXT's when absent or malformed: a new trace). */
export function contextOfTraceparent(traceparent: string | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** Context of incoming HTTP headers (`traceparent`, `tracestate`), for a server span. */
export function contextOfHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(ROOT_CONTEXT, headers);
}
