/**
 * Recognises errors that mean "PostgreSQL or Redis is briefly unreachable", so the API can
 * answer 503 UNAVAILABLE with Retry-After (the client retries) instead of a masked 500, and
 * workers can retry instead of failing a job. Walks `cause` chains and Prisma's driver
 * adapter metadata; knows no library types, only their documented names and codes. A
 * DomainError is never one (it is already a decided answer, whatever its cause). The one
 * classifier: the API's error mapper and libs/completions' createCompletion both use it.
 */
import { DomainError } from "./errors";

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "EAI_AGAIN"]);
// Prisma: P1001 can't reach, P1002 timed out, P1008 operation timed out, P1017 server closed
// the connection, P2024 timed out waiting for a pool connection.
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
// @prisma/driver-adapter-utils error kinds for lost or refused connections.
const ADAPTER_KINDS = new Set(["ConnectionClosed", "DatabaseNotReachable", "SocketTimeout", "TooManyConnections"]);
// RedisCommandTimeoutError: libs/redis' request-path deadline (the command was never sent late).
const NAMES = new Set(["MaxRetriesPerRequestError", "PrismaClientInitializationError", "RedisCommandTimeoutError"]);
const MESSAGES = [
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /Connection terminated/i,
  /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)\b/,
  /Can't reach database/i,
  /max retries per request/i,
  /^Command timed out$/, // ioredis' own commandTimeout
];

type Loose = {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  kind?: unknown;
  meta?: { driverAdapterError?: unknown };
};

export function isTransientInfraError(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== "object" || depth > 5 || error instanceof DomainError) return false;
  const e = error as Loose;
  if (typeof e.name === "string" && NAMES.has(e.name)) return true;
  if (typeof e.code === "string" && (NETWORK_CODES.has(e.code) || PRISMA_CODES.has(e.code))) return true;
  if (typeof e.kind === "string" && ADAPTER_KINDS.has(e.kind)) return true;
  if (typeof e.message === "string" && MESSAGES.some((m) => m.test(e.message as string))) return true;
  if (e.meta?.driverAdapterError && isTransientInfraError(e.meta.driverAdapterError, depth + 1)) return true;
  if (typeof e.cause === "string") return MESSAGES.some((m) => m.test(e.cause as string));
  return e.cause !== undefined && isTransientInfraError(e.cause, depth + 1);
}
