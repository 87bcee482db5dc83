import { backoffMs, sleep, withRetry } from "./retry";

/** An operation failing `failures` times, then answering "ok". */
function flaky(failures: number) {
  let calls = 0;
  const op = async () => {
    calls++;
    if (calls <= failures) throw new Error(`fail ${calls}`);
    return "ok";
  };
  return { op, calls: () => calls };
}

describe("withRetry", () => {
  it("retries until the operation succeeds", async () => {
    const f = flaky(3);
    await expect(withRetry(f.op, { initialMs: 1, maxMs: 2 })).resolves.toBe("ok");
    expect(f.calls()).toBe(4);
  });

  it("stops when onError says so, when aborted, or after the attempts allowed, rethrowing the last error", async () => {
    const a = flaky(5);
    await expect(withRetry(a.op, { initialMs: 1, onError: (_e, n) => n < 2 })).rejects.toThrow("fail 2");
    const b = flaky(5);
    await expect(withRetry(b.op, { initialMs: 1, aborted: () => b.calls() >= 3 })).rejects.toThrow("fail 3");
    const c = flaky(5);
    await expect(withRetry(c.op, { delayMs: () => 1, attempts: 2 })).rejects.toThrow("fail 2");
    expect(c.calls()).toBe(2);
  });

  it("stops waiting as soon as its signal aborts", async () => {
    const controller = new AbortController();
    const f = flaky(100);
    const started = Date.now();
    const run = withRetry(f.op, { delayMs: () => 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(run).rejects.toThrow("fail 1");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(f.calls()).toBe(1);
  });

  it("backs off exponentially up to the cap", () => {
    expect([1, 2, 3, 4, 10, 30].map((n) => backoffMs(n, 50, 2000))).toEqual([50, 100, 200, 400, 2000, 2000]);
  });

  it("sleep resolves at once on an aborted signal", async () => {
    await expect(sleep(60_000, { signal: AbortSignal.abort() })).resolves.toBeUndefined();
  });
});
