import type { DomainErrorCode } from "./vocabulary";

/**
 * The domain error base. Every library's errors carry one code from a closed set;
 * `apps/api/src/errors.ts` is the one place mapping codes to GraphQL codes and HTTP statuses.
 */
export interface DomainErrorOptions {
  retryable?: boolean;
  /** for RATE_LIMITED / QUOTA_EXCEEDED / UNAVAILABLE */
  retryAfterMs?: number;
  /** machine-readable sub-reason, e.g. TENANT_SUSPENDED */
  reason?: string;
  /** offending input field for BAD_USER_INPUT */
  field?: string;
  context?: Record<string, unknown>;
  cause?: unknown;
}

export class DomainError extends Error {
  readonly code: DomainErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly reason?: string;
  readonly field?: string;
  readonly context?: Record<string, unknown>;

  constructor(code: DomainErrorCode, message: string, options: DomainErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DomainError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.reason = options.reason;
    this.field = options.field;
    this.context = options.context;
  }
}

export const badInput = (field: string, message: string): DomainError =>
  new DomainError("BAD_USER_INPUT", `${field}: ${message}`, { field });

export const notFound = (what: string, id: string): DomainError =>
  new DomainError("NOT_FOUND", `${what} ${id} not found`);

export const forbidden = (message: string, reason?: string): DomainError =>
  new DomainError("FORBIDDEN", message, { reason });

export const notImplemented = (what: string): DomainError =>
  new DomainError("NOT_IMPLEMENTED", `${what} is not implemented yet`);

export function assertNever(value: never, message = "unexpected value"): never {
  throw new Error(`${message}: ${JSON.stringify(value)}`);
}

/** Expected refusals on hot paths are values, not exceptions. */
export type Result<T, E = DomainError> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
