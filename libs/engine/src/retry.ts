/** Retries a transient operation with capped exponential backoff until it succeeds or `give up` says so. */
export interface RetryOptions {
  /** first delay, ms (default 50) */
  initialMs?: number;
  /** cap, ms (default 2000) */
  maxMs?: number;
  /** called with each failure; return false to stop retrying (the error is rethrown) */
  onError?: (e: unknown, attempt: number) => boolean | void;
  /** stop retrying once this returns true (the error is rethrown) */
  aborted?: () => boolean;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function withRetry<T>(op: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const initial = opts.initialMs ?? 50;
  const max = opts.maxMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (opts.onError?.(e, attempt) === false || opts.aborted?.()) throw e;
      await sleep(Math.min(max, initial * 2 ** Math.min(attempt - 1, 10)) * (0.75 + Math.random() * 0.5));
    }
  }
}
