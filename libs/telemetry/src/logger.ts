import pino, { type DestinationStream, type Logger } from "pino";

/**
 * The one logger factory of the API and the worker: structured JSON, ISO timestamps, and
 * the same redaction in both. Logs never carry secrets or what tenants wrote or read:
 * request logs hold ids, operation names and timings, never headers, variables or bodies,
 * and the redaction below is the second line of defence for a field logged by mistake.
 */

/** Field names whose values are credentials: API keys, secrets, authorization headers. */
export const SECRET_FIELDS = [
  "authorization",
  "Authorization",
  "cookie",
  "secret",
  "apiKey",
  "ADMIN_API_KEY",
  "password",
  "privateKey",
  "MODEL_PRIVATE_KEY",
] as const;

/** Field names whose values are tenant content: prompts, completion text, GraphQL variables (which hold both). */
export const CONTENT_FIELDS = ["prompt", "text", "completionText", "variables"] as const;

export const REDACTED = "[redacted]";

/**
 * pino redaction paths: each field at the top level and one level down (`{ input: { prompt } }`),
 * and headers wherever a request or connection object carries them.
 */
export const REDACT_PATHS: readonly string[] = [
  ...[...SECRET_FIELDS, ...CONTENT_FIELDS].flatMap((f) => [f, `*.${f}`]),
  ...["headers", "*.headers", "connectionParams", "*.connectionParams"].flatMap((h) => [
    `${h}.authorization`,
    `${h}.Authorization`,
    `${h}.cookie`,
  ]),
];

/**
 * Prisma errors are logged by type, code and first message line only: their full messages
 * echo the query's arguments (which may hold a prompt or completion text).
 */
export function errSerializer(e: unknown): Record<string, unknown> {
  const base = pino.stdSerializers.err(e as Error) as unknown as Record<string, unknown>;
  const name = (e as Error | undefined)?.constructor?.name ?? "";
  if (!name.startsWith("PrismaClient")) return base;
  const x = e as { code?: string; meta?: unknown; message?: string };
  return {
    type: name,
    code: x.code,
    meta: x.meta,
    message: String(x.message ?? "")
      .trim()
      .split("\n")[0],
  };
}

export interface LoggerOptions {
  /** the service name: `name` and `service` of every line ("api", "worker") */
  name: string;
  /** pino level: fatal, error, warn, info, debug, trace or silent */
  level: string;
  /** further fields on every line (the worker's id) */
  base?: Record<string, unknown>;
  /** where lines go (tests capture them); stdout by default */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      serializers: { err: errSerializer },
      base: { service: options.name, ...options.base, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    },
    options.destination as DestinationStream,
  );
}
