import type { NextFunction, Request, Response } from "express";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
} from "@opentelemetry/semantic-conventions";
import {
  ATTR,
  contextOfHeaders,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  tracer,
  type Context,
} from "@lite/tracing";

/** The routes that start work (GraphQL, the OpenAI-compatible REST API): each request is a server span. */
const TRACED = /^\/(graphql|v1\/)/;

/**
 * The root of a request's trace: a SERVER span `<METHOD> <route>` (a child of the caller's
 * `traceparent` header when it sends one). Its context goes in `res.locals.traceContext`
 * (traceContextOf): the request's ApiContext carries it, so the spans libs/completions starts
 * (completion.create, admission, enqueue) are its children and the enqueued job carries their
 * context to the worker. No context manager: parents are passed, never found (tracing-setup.ts).
 * Attributes: method, route, status, the GraphQL operation name; never the body or headers.
 * With tracing off the tracer is @opentelemetry/api's no-op: nothing is stored, `next` runs as is.
 */
export function traceRequests() {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!TRACED.test(req.path)) return next();
    const route = req.path.startsWith("/graphql") ? "/graphql" : req.path;
    const parent = contextOfHeaders(req.headers);
    const span = tracer().startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: req.method, [ATTR_HTTP_ROUTE]: route } },
      parent,
    );
    if (!span.isRecording()) return next();
    res.locals.traceContext = trace.setSpan(parent, span);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const body = req.body as { operationName?: unknown } | undefined;
      if (typeof body?.operationName === "string") span.setAttribute(ATTR.operation, body.operationName.slice(0, 100));
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: String(res.statusCode) });
      span.end();
    };
    res.on("finish", end);
    res.on("close", end);
    next();
  };
}

/** The request's span context (traceRequests), the root context when it has none. */
export function traceContextOf(res: Response): Context {
  return (res.locals.traceContext as Context | undefined) ?? ROOT_CONTEXT;
}
