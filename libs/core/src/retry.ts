/**
 * The one retry helper: runs an operation until it succeeds, waiting between attempts
 * (capped exponential backoff with jitter by default, so workers that lost PostgreSQL or
 * Redis together do not come back in lockstep). It retries whatever fails; callers decide
 * what is worth retrying through `onError` (e.g. with `isTransientInfraError`).
 */
export interface RetryOptions {
  /** first delay, ms (default 50) */
  initialMs?: number;
  /** cap, ms (default 2000) */
  maxMs?: number;
  /** delays ×[0.75, 1.25) at random (default true) */
  jitter?: boolean;
  /** a fixed schedule instead of the exponential one: the delay after failed attempt n (1-based) */
  delayMs?: (attempt: number) => number;
  /** attempts in all, the first included (default: no limit); the last error is rethrown */
  attempts?: number;
  /** called with each failure; return false to stop retrying (the error is rethrown) */
  onError?: (e: unknown, attempt: number) => boolean | void;
  /** stop retrying once this returns true (the error is rethrown) */
  aborted?: () => boolean;
  /** aborting stops the wait at once and retries no more (a shutdown must not wait for a timer) */
  signal?: AbortSignal;
  /** waits do not keep the process alive (background work that may be abandoned at exit) */
  unref?: boolean;
}

export interface SleepOptions {
  signal?: AbortSignal;
  unref?: boolean;
}

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, opts: SleepOptions = {}): Promise<void> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (opts.unref) timer.unref();
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The exponential delay after failed attempt n (1-based), before jitter. */
export function backoffMs(attempt: number, initialMs = 50, maxMs = 2000): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 10));
}

export async function withRetry<T>(op: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? Infinity;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (opts.onError?.(e, attempt) === false || opts.aborted?.() || opts.signal?.aborted || attempt >= attempts) {
        throw e;
      }
      const base = opts.delayMs ? opts.delayMs(attempt) : backoffMs(attempt, opts.initialMs, opts.maxMs);
      const jitter = opts.jitter === false ? 1 : 0.75 + Math.random() * 0.5;
      await sleep(base * jitter, { signal: opts.signal, unref: opts.unref });
      if (opts.signal?.aborted) throw e;
    }
  }
}
