import pino, { type Logger } from "pino";

/**
 * Structured JSON logs. Never secrets or prompt text: request logs carry ids, the
 * operation name and timings, never headers, variables or bodies; the redaction list
 * is a second line of defence.
 */
export function createLogger(level: string, name = "api"): Logger {
  return pino({
    name,
    level,
    base: { service: name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["authorization", "*.authorization", "headers.authorization", "secret", "*.secret", "prompt", "*.prompt", "variables", "*.variables"],
      censor: "[redacted]",
    },
  });
}
