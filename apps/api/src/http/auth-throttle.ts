import { DomainError, err, type Result } from "@lite/core";
import { hashApiKey, type Principal } from "@lite/auth";
import type { ApiServices } from "../services";

/**
 * Failed authentication, throttled per source (README "Failed authentication"). A presented
 * key that does not authenticate costs a PostgreSQL lookup and an audit row; a source may
 * spend AUTH_FAILURES_PER_SOURCE of those per AUTH_FAILURE_WINDOW_SECONDS. Past that, until
 * its window ends:
 *  1. a key that authenticated recently in this process (its hash remembered) goes on as
 *     usual, so clients behind the same address keep working;
 *  2. any other key answers RATE_LIMITED (429, Retry-After) with no lookup and no audit row;
 *  3. one `auth.throttled` audit row per source and window says how it began.
 * Requests without a key cost nothing and are not counted. Counts are per API process.
 */

interface Window {
  startedAtMs: number;
  failures: number;
  /** the auth.throttled row of this window was written */
  reported: boolean;
}

/** Hashes of keys that authenticated recently (bounded; oldest dropped first). */
const KNOWN_KEYS_MAX = 10_000;
/** Sources tracked at once; past it, windows that have ended are dropped first. */
const SOURCES_MAX = 100_000;

export class AuthThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly knownKeys = new Set<string>();

  constructor(
    private readonly services: Pick<ApiServices, "auth" | "audit" | "metrics" | "clock" | "env">,
    private readonly budget = services.env.AUTH_FAILURES_PER_SOURCE,
    private readonly windowMs = services.env.AUTH_FAILURE_WINDOW_SECONDS * 1000,
  ) {}

  /**
   * Authenticates `secret` for a request from `source`, unless the source is throttled.
   * Failures are counted (metric), audited while within the budget, and aggregated after.
   * Throws when the lookup itself fails (PostgreSQL or Redis away).
   */
  async authenticate(
    source: string,
    secret: string | null,
    audit: { action: string; resource: string },
  ): Promise<Result<Principal, DomainError>> {
    const hash = secret ? hashApiKey(secret) : null;
    const now = this.services.clock.nowMs();
    const window = this.windowOf(source, now);
    if (hash && window.failures >= this.budget && !this.knownKeys.has(hash)) {
      return err(await this.throttled(source, window, now));
    }
    const result = await this.services.auth.authenticate(secret);
    if (result.ok) {
      if (hash) this.remember(hash);
      return result;
    }
    const reason = result.error.reason ?? result.error.code;
    this.services.metrics.authFailures.inc({ reason });
    if (hash) {
      this.knownKeys.delete(hash);
      window.failures++;
      await this.services.audit.record({ actor: "anonymous", ...audit, decision: "DENY", reason });
    }
    return result;
  }

  private async throttled(source: string, window: Window, now: number): Promise<DomainError> {
    this.services.metrics.authFailures.inc({ reason: "THROTTLED" });
    if (!window.reported) {
      window.reported = true;
      await this.services.audit.record({
        actor: "anonymous",
        action: "auth.throttled",
        resource: `source:${source}`,
        decision: "DENY",
        reason: `${window.failures} failed authentications within ${this.windowMs / 1000} s; further unknown keys refused until the window ends`,
      });
    }
    const retryAfterMs = Math.max(1, window.startedAtMs + this.windowMs - now);
    return new DomainError("RATE_LIMITED", "too many failed authentications from this address; retry later", {
      reason: "AUTH_FAILURES",
      retryAfterMs,
    });
  }

  private windowOf(source: string, now: number): Window {
    let w = this.windows.get(source);
    if (!w || now - w.startedAtMs >= this.windowMs) {
      if (!w && this.windows.size >= SOURCES_MAX) this.prune(now);
      w = { startedAtMs: now, failures: 0, reported: false };
      this.windows.set(source, w);
    }
    return w;
  }

  private prune(now: number): void {
    for (const [source, w] of this.windows) if (now - w.startedAtMs >= this.windowMs) this.windows.delete(source);
    // Still full of live windows: forget the oldest (a flood of addresses must not grow memory).
    for (const source of this.windows.keys()) {
      if (this.windows.size < SOURCES_MAX) break;
      this.windows.delete(source);
    }
  }

  private remember(hash: string): void {
    this.knownKeys.delete(hash);
    this.knownKeys.add(hash);
    if (this.knownKeys.size > KNOWN_KEYS_MAX) this.knownKeys.delete(this.knownKeys.values().next().value as string);
  }
}

const throttles = new WeakMap<object, AuthThrottle>();

/** The one throttle of an API process (HTTP, WebSocket and /metrics share it). */
export function authThrottleOf(services: ApiServices): AuthThrottle {
  let t = throttles.get(services);
  if (!t) {
    t = new AuthThrottle(services);
    throttles.set(services, t);
  }
  return t;
}
