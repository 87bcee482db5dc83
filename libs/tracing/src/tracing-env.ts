import { z } from "zod";
import { enumVar, intVar, listVar, urlVar } from "@lite/config";

/**
 * The standard OpenTelemetry variables this runtime reads (each app spreads these fields into
 * its env.ts schema, so they are parsed once with the rest and a bad value stops the process
 * with one line naming it). Tracing is off unless an exporter is named (OTEL_TRACES_EXPORTER)
 * or an OTLP endpoint is set; OTEL_SDK_DISABLED=true turns it off whatever else is set.
 * The SDK itself also honours OTEL_BSP_* (batching) and OTEL_*_LIMIT (attribute limits).
 */
export const TRACES_EXPORTERS = ["otlp", "console", "none"] as const;
export const TRACES_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type TracesSampler = (typeof TRACES_SAMPLERS)[number];

/** `k=v,k2=v2` (values URL-encoded, as the OpenTelemetry spec writes them); unset: {} */
const keyValueListVar = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const out: Record<string, string> = {};
      if (v === undefined || v.trim() === "") return out;
      for (const part of v.split(",")) {
        if (part.trim() === "") continue;
        const eq = part.indexOf("=");
        const key = eq > 0 ? part.slice(0, eq).trim() : "";
        if (!key) {
          ctx.addIssue({ code: "custom", message: "must be key=value entries separated by commas" });
          return z.NEVER;
        }
        try {
          out[key] = decodeURIComponent(part.slice(eq + 1).trim());
        } catch {
          ctx.addIssue({ code: "custom", message: `has a badly encoded value for ${key}` });
          return z.NEVER;
        }
      }
      return out;
    });

const exportersVar = () =>
  listVar([]).superRefine((names, ctx) => {
    for (const n of names)
      if (!(TRACES_EXPORTERS as readonly string[]).includes(n))
        ctx.addIssue({ code: "custom", message: `must list ${TRACES_EXPORTERS.join(", ")}; got "${n}"` });
  });

/** The only wire format of @opentelemetry/exporter-trace-otlp-http: OTLP over HTTP with JSON bodies. */
const protocolVar = () =>
  z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v !== undefined && v !== "" && v !== "http/json")
        ctx.addIssue({
          code: "custom",
          message: `must be http/json (traces are sent as OTLP/HTTP JSON; most collectors take it on :4318), got "${v}"`,
        });
    });

const ratioVar = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return 1;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0 || n > 1) {
        ctx.addIssue({ code: "custom", message: `must be a number from 0 to 1, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

export const tracingEnvFields = {
  OTEL_SDK_DISABLED: enumVar(["true", "false"], "false"),
  OTEL_TRACES_EXPORTER: exportersVar(),
  OTEL_EXPORTER_OTLP_ENDPOINT: urlVar(["http:", "https:"]),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: urlVar(["http:", "https:"]),
  OTEL_EXPORTER_OTLP_HEADERS: keyValueListVar(),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValueListVar(),
  OTEL_EXPORTER_OTLP_TIMEOUT: intVar(10000, 1, 600000),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: intVar(0, 0, 600000),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocolVar(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocolVar(),
  OTEL_SERVICE_NAME: z.string().optional(),
  OTEL_RESOURCE_ATTRIBUTES: keyValueListVar(),
  OTEL_TRACES_SAMPLER: enumVar(TRACES_SAMPLERS, "parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: ratioVar(),
};
const TracingEnv = z.object(tracingEnvFields);
export type TracingEnv = z.output<typeof TracingEnv>;

/** What startTracing needs (tracing-setup.ts); `exporters` empty means off. */
export interface TracingOptions {
  /** `service.name` of every span of this process */
  serviceName: string;
  exporters: Array<"otlp" | "console">;
  /** full URL of the OTLP/HTTP traces endpoint (…/v1/traces) */
  otlpUrl: string;
  /** sent with every export (may hold credentials: never logged) */
  otlpHeaders: Record<string, string>;
  /** ms */
  otlpTimeoutMs: number;
  resourceAttributes: Record<string, string>;
  sampler: TracesSampler;
  /** 0..1, for the traceidratio samplers */
  samplerRatio: number;
}

const DEFAULT_OTLP_BASE = "http://localhost:4318";

/**
 * The tracing options of a process from its parsed env: the exporters named, or `otlp` when
 * only an endpoint is set, or none (off). Signal-specific variables win over the general ones.
 */
export function tracingOptionsOf(env: TracingEnv, defaultServiceName: string): TracingOptions {
  const endpointSet = Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const named = env.OTEL_TRACES_EXPORTER.length > 0 ? env.OTEL_TRACES_EXPORTER : endpointSet ? ["otlp"] : [];
  const exporters =
    env.OTEL_SDK_DISABLED === "true" || named.includes("none")
      ? []
      : [...new Set(named.filter((n): n is "otlp" | "console" => n !== "none"))];
  const base = (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? DEFAULT_OTLP_BASE).replace(/\/+$/, "");
  return {
    serviceName: env.OTEL_SERVICE_NAME || env.OTEL_RESOURCE_ATTRIBUTES["service.name"] || defaultServiceName,
    exporters,
    otlpUrl: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${base}/v1/traces`,
    otlpHeaders: { ...env.OTEL_EXPORTER_OTLP_HEADERS, ...env.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    otlpTimeoutMs: env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT || env.OTEL_EXPORTER_OTLP_TIMEOUT,
    resourceAttributes: env.OTEL_RESOURCE_ATTRIBUTES,
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
  };
}

/** Parses only the OTEL_* variables (for scripts that have no env.ts schema of their own). */
export const TracingEnvSchema = TracingEnv;
