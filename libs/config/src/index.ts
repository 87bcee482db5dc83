import { z } from "zod";

/**
 * Schema helpers for configuration. Each app's env.ts parses process.env once with
 * `parseEnv`; libraries take typed options and never read the environment.
 */
export const intVar = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return def;
      if (!/^-?\d+$/.test(v.trim())) {
        ctx.addIssue({ code: "custom", message: `must be an integer, got "${v}"` });
        return z.NEVER;
      }
      const n = Number(v);
      if (n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `must be between ${min} and ${max}, got ${n}` });
        return z.NEVER;
      }
      return n;
    });

const BYTE_UNITS: Record<string, number> = { "": 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/** A size in bytes: an integer, optionally with a binary unit (`512MiB`, `1GiB`); unset or empty: `def`. */
export const bytesVar = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return def;
      const m = /^(\d+)\s*(KiB|MiB|GiB|TiB)?$/.exec(v.trim());
      if (!m) {
        ctx.addIssue({ code: "custom", message: `must be a byte count (e.g. 1073741824 or 1GiB), got "${v}"` });
        return z.NEVER;
      }
      const n = Number(m[1]) * BYTE_UNITS[m[2] ?? ""];
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `must be between ${min} and ${max} bytes, got ${v}` });
        return z.NEVER;
      }
      return n;
    });

export const urlVar = (protocols: string[]) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return undefined;
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        ctx.addIssue({ code: "custom", message: "is not a valid URL" });
        return z.NEVER;
      }
      if (!protocols.includes(u.protocol)) {
        ctx.addIssue({ code: "custom", message: `must use ${protocols.join(" or ")} (got ${u.protocol})` });
        return z.NEVER;
      }
      return v;
    });

/** base64 of exactly `bytes` bytes */
export const base64KeyVar = (bytes: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return undefined;
      const trimmed = v.trim();
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
        ctx.addIssue({ code: "custom", message: "must be base64" });
        return z.NEVER;
      }
      const buf = Buffer.from(trimmed, "base64");
      if (buf.length !== bytes) {
        ctx.addIssue({ code: "custom", message: `must decode to exactly ${bytes} bytes, got ${buf.length}` });
        return z.NEVER;
      }
      return buf;
    });

export const enumVar = <T extends string>(values: readonly [T, ...T[]], def: T) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return def;
      if (!(values as readonly string[]).includes(v)) {
        ctx.addIssue({ code: "custom", message: `must be one of ${values.join(", ")}, got "${v}"` });
        return z.NEVER;
      }
      return v as T;
    });

export const listVar = (def: string[]) =>
  z
    .string()
    .optional()
    .transform((v) =>
      v === undefined || v.trim() === ""
        ? def
        : v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
    );

/** Comma-separated `host:port` entries (IPv6 hosts in brackets); unset or empty: [] */
export const hostPortListVar = () =>
  listVar([]).superRefine((nodes, ctx) => {
    for (const node of nodes) {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(node);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
        ctx.addIssue({ code: "custom", message: `must be host:port entries separated by commas, got "${node}"` });
    }
  });

export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
    this.name = "ConfigError";
  }
}

/** Parse an environment with a zod object schema; throws ConfigError with one line per bad variable. */
export function parseEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `config error: ${i.path.join(".") || "(env)"} ${i.message}`);
  throw new ConfigError(lines);
}

/** For process entry points: print each line and exit 1 on bad configuration. */
export function parseEnvOrExit<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  try {
    return parseEnv(schema, env);
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.lines) process.stderr.write(`${line}\n`);
      process.exit(1);
    }
    throw e;
  }
}

/** A string with a default for unset or empty values. */
export const stringVar = (def: string) =>
  z
    .string()
    .optional()
    .transform((v) => v || def);

/** pino's levels, for LOG_LEVEL */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** The variables every process that serves (API, worker) reads the same way (RUNTIME.md). */
export const serviceEnvFields = {
  DATABASE_URL: urlVar(["postgresql:", "postgres:"]).refine((v) => v !== undefined, "is required"),
  REDIS_URL: urlVar(["redis:", "rediss:"]).refine((v) => v !== undefined, "is required"),
  /**
   * Redis Cluster seed nodes, `host:port,host:port,…`: set, every Redis client is a cluster
   * client; REDIS_URL then names one node (any) and carries the user, password and TLS
   */
  REDIS_CLUSTER_NODES: hostPortListVar(),
  /** prefix of every Redis key (tests and benchmarks use one each) */
  REDIS_PREFIX: stringVar("lite").refine(
    (v) => /^[A-Za-z0-9:_-]+$/.test(v),
    "must be letters, digits, ':', '_' or '-'",
  ),
  /** model manifests, one directory per model: `<MODEL_DIR>/<name>/manifest.json` */
  MODEL_DIR: stringVar("var/models"),
  /** Ed25519 public key (PEM or base64) trusted to sign manifests; default: the one beside the manifest */
  MODEL_PUBLIC_KEY: z.string().optional(),
  /**
   * fair (default) or fifo: the benchmarks' baseline, one queue for all tenants in arrival
   * order and no token-level fairness (the API and every worker must agree)
   */
  SCHEDULER_MODE: enumVar(["fair", "fifo"], "fair"),
  LOG_LEVEL: enumVar(LOG_LEVELS, "info"),
  /**
   * N of the bounded Prometheus `tenant` label: the N tenants with the most recent traffic in
   * this process keep their id, the others count under `other` (libs/telemetry tenant-labels.ts)
   */
  METRICS_TENANT_LABELS: intVar(50, 0, 10_000),
  /**
   * on (default): per-tenant Prometheus series and the live per-tenant metrics published to
   * Redis (Tenant.metrics, tenantMetrics) are recorded; off: neither is (no per-request or
   * per-token update, nothing published; /metrics still answers with the process-level
   * series). The telemetry benchmark's baseline; a deployment that turns it off has no
   * Tenant.metrics figures from this process
   */
  METRICS: enumVar(["on", "off"], "on"),
};

/**
 * The worker's expert cache (libs/cache, docs/EXPERT-CACHE.md). Defaults fit the `default`
 * model (≈ 622 MB of expert files; one token needs ≈ 151 MB) on a 2-core / 24 GiB machine.
 */
export const expertCacheEnvFields = {
  /** bytes of HOT experts (onnxruntime sessions) in one worker, all models and tenants; default 1 GiB */
  HOT_CAPACITY_BYTES: bytesVar(2 ** 30, 1),
  /** bytes of WARM experts (verified bytes in RAM, HOT ones included) in one worker; default 2 GiB */
  WARM_CAPACITY_BYTES: bytesVar(2 ** 31, 1),
  /** expert uses per accounting epoch: a tenant idle on an expert for a whole epoch stops paying for it; default 4096 */
  EXPERT_CACHE_EPOCH_USES: intVar(4096, 1, 1_000_000_000),
  /** how long a worker keeps a tenant's quota and weight before reading them again, seconds; default 10 */
  EXPERT_CACHE_QUOTA_TTL_SECONDS: intVar(10, 1, 3600),
};
export * from "./worker-node-flags";
