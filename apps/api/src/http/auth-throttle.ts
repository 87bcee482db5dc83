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
 * Unknown keys in flight count against the budget with the failures: past it, a request
 * waits for a lookup in flight to settle (concurrent requests cannot overrun the budget while
 * their lookups run, and a valid key is never refused for others' pending lookups), and
 * at most LOOKUPS_IN_FLIGHT_PER_SOURCE run at once;
 * concurrent requests with one new key share one lookup. A window that follows a throttled one (the source is still flooding) releases
 * its budget evenly — one lookup at its start, then one per window ÷ budget — instead of all
 * at once: 16 clients tarpitted until the window's end otherwise all came back at the same
 * instant and were looked up and audited together (abuse bench attack (f): a 120–150 ms stall
 * of the event loop at each rollover).
 * Requests without a key cost nothing and are not counted. Counts are per API process.
 */

interface Window {
  startedAtMs: number;
  /** unknown keys that failed authentication in this window */
  failures: number;
  /** lookups of unknown keys in flight (each settles, never rejects) */
  inflight: Set<Promise<void>>;
  /** the budget is released evenly over the window (the window before was throttled) */
  paced: boolean;
  /** some key was refused RATE_LIMITED in this window */
  throttled: boolean;
  /** the auth.throttled row of this window was written */
  reported: boolean;
}

/** Hashes of keys that authenticated recently (bounded; oldest dropped first). */
const KNOWN_KEYS_MAX = 10_000;
/**
 * Lookups of unknown keys one source may have in flight at once; the rest wait their turn
 * (each takes a few ms). Without it a source's burst of new keys was as many concurrent
 * PostgreSQL queries as the budget allows: the pool grew to its maximum at once, a SCRAM
 * exchange and a backend fork per new connection (abuse bench attack (f), as it began).
 */
export const LOOKUPS_IN_FLIGHT_PER_SOURCE = 4;
/** Sources tracked at once; past it, windows that have ended are dropped first. */
const SOURCES_MAX = 100_000;

export class AuthThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly knownKeys = new Set<string>();
  /** lookups of unknown keys in flight, by key hash: concurrent requests with one key share one */
  private readonly lookups = new Map<string, Promise<Result<Principal, DomainError>>>();

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
    if (hash === null || this.knownKeys.has(hash))
      return this.lookup(this.windowOf(source, this.now()), hash, secret, audit);
    // A client's first burst with a new key (many requests at once, before any answer) is one
    // lookup and one place in the budget, not one per request.
    const pending = this.lookups.get(hash);
    if (pending) return pending;
    // An unknown key is looked up only while the window's failures plus the lookups in flight
    // stay within the budget; past it, it waits for one in flight to settle (a valid key is
    // never refused for others' pending lookups), and is refused once failures fill the budget.
    for (;;) {
      const now = this.now();
      const window = this.windowOf(source, now);
      const allowance = this.allowance(window, now);
      if (window.failures >= allowance) return err(await this.throttled(source, window, now));
      if (window.failures + window.inflight.size < allowance && window.inflight.size < LOOKUPS_IN_FLIGHT_PER_SOURCE) {
        const lookup = this.lookup(window, hash, secret, audit);
        const settled = lookup.then(
          () => undefined,
          () => undefined,
        );
        window.inflight.add(settled);
        this.lookups.set(hash, lookup);
        try {
          return await lookup;
        } finally {
          window.inflight.delete(settled);
          this.lookups.delete(hash);
        }
      }
      await Promise.race(window.inflight);
    }
  }

  private now(): number {
    return this.services.clock.nowMs();
  }

  /** The lookup; a failure is counted in `window`, audited and the key forgotten. */
  private async lookup(
    window: Window,
    hash: string | null,
    secret: string | null,
    audit: { action: string; resource: string },
  ): Promise<Result<Principal, DomainError>> {
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

  /** Unknown keys the window lets through by `now`: all of the budget, or paced, one per window ÷ budget. */
  private allowance(w: Window, now: number): number {
    if (!w.paced) return this.budget;
    return Math.min(this.budget, 1 + Math.floor(((now - w.startedAtMs) * this.budget) / this.windowMs));
  }

  private async throttled(source: string, window: Window, now: number): Promise<DomainError> {
    this.services.metrics.authFailures.inc({ reason: "THROTTLED" });
    window.throttled = true;
    if (!window.reported) {
      window.reported = true;
      await this.services.audit.record({
        actor: "anonymous",
        action: "auth.throttled",
        resource: `source:${source}`,
        decision: "DENY",
        reason: window.paced
          ? `still failing authentication after the last window: one unknown key per ${this.windowMs / this.budget / 1000} s looked up, the rest refused until the window ends`
          : `${window.failures} failed authentications within ${this.windowMs / 1000} s; further unknown keys refused until the window ends`,
      });
    }
    // the next lookup: the window's end, or while paced the next release within it
    const end = window.startedAtMs + this.windowMs;
    const next =
      window.paced && window.failures < this.budget
        ? Math.min(end, window.startedAtMs + Math.ceil((window.failures * this.windowMs) / this.budget))
        : end;
    const retryAfterMs = Math.max(1, next - now);
    return new DomainError("RATE_LIMITED", "too many failed authentications from this address; retry later", {
      reason: "AUTH_FAILURES",
      retryAfterMs,
    });
  }

  private windowOf(source: string, now: number): Window {
    let w = this.windows.get(source);
    if (!w || now - w.startedAtMs >= this.windowMs) {
      if (!w && this.windows.size >= SOURCES_MAX) this.prune(now);
      // still flooding: the window right after a throttled one is paced
      const paced = w !== undefined && w.throttled && now - w.startedAtMs < 2 * this.windowMs;
      w = { startedAtMs: now, failures: 0, inflight: new Set(), paced, throttled: false, reported: false };
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
