import pino, { type Logger } from "pino";

/**
 * Structured JSON logs. Never secrets or prompt text: request logs carry ids, the
 * operation name and timings, never headers, variables or bodies; the redaction list
 * is a second line of defence.
 */
/**
 * Errors are logged by type, code and first message line only for Prisma errors: their
 * full messages echo the query's arguments (which may hold a prompt).
 */
function errSerializer(e: unknown): Record<string, unknown> {
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

export function createLogger(level: string, name = "api", destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      serializers: { err: errSerializer },
      base: { service: name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "authorization",
          "*.authorization",
          "headers.authorization",
          "secret",
          "*.secret",
          "prompt",
          "*.prompt",
          "variables",
          "*.variables",
        ],
        censor: "[redacted]",
      },
    },
    destination as pino.DestinationStream,
  );
}
