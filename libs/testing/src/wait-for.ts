export interface WaitForOptions {
  /** give up after this long, ms (default 20000) */
  timeoutMs?: number;
  /** pause between probes, ms (default 50) */
  everyMs?: number;
}

/**
 * Probes until the answer is truthy and returns it; throws `timed out waiting for <what>`
 * once the deadline has passed. A probe that started before the deadline is always awaited,
 * so a slow probe never reports a false timeout — callers that assert "within N ms" time
 * the wait themselves.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  for (;;) {
    const v = await probe();
    if (v) return v as Exclude<T, false | null | undefined | 0 | "">;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The promise's value, or a rejection `<what> not done within <ms> ms` once `ms` have passed. */
export async function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
