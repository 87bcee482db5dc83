/**
 * @lite/tracing — OpenTelemetry traces: the OTEL_* variables (tracing-env.ts), the one
 * provider a process registers (tracing-setup.ts, off unless configured) and the helpers
 * libraries start spans and carry trace context with (spans.ts, over @opentelemetry/api only).
 */
export * from "./tracing-env";
export * from "./tracing-setup";
export * from "./spans";
