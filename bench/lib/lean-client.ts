/**
 * What the benches' client processes share (bench/lib/abuse-victim.ts, isolation-light.ts):
 * HTTP over kept-alive node:http sockets and a meter of the process's own pauses. A client
 * process imports only node's modules (and graphql-ws where it streams), so that its
 * latencies are what a lean client sees, not the bench process's garbage-collection pauses.
 */
import http from "node:http";
import {
  constants as perfConstants,
  monitorEventLoopDelay,
  PerformanceObserver,
  type PerformanceEntry,
} from "node:perf_hooks";

/** This process over one window: where a client-side pause would show. */
export interface ClientProcess {
  /** time in garbage collection (all kinds) */
  gcMs: number;
  /** of which major (mark-compact) */
  gcMajorMs: number;
  /** the longest single GC pause */
  gcMaxPauseMs: number;
  gcCount: number;
  /** the longest event-loop delay (20 ms resolution is not enough here: 1 ms) */
  loopDelayMaxMs: number;
  heapUsedMb: number;
}

/** Kept-alive sockets, as fetch's pool (a socket per request in flight, reused after it). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP request over `agent`: its status and body (read whole, as a client would). */
export function request(
  url: string,
  opts: { method: "GET" | "POST"; headers?: Record<string, string>; body?: string; timeoutMs?: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method,
        agent,
        headers:
          opts.body === undefined ? opts.headers : { ...opts.headers, "content-length": Buffer.byteLength(opts.body) },
        signal: opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** GC entries of this process while `meter` is on. */
export function gcMeter(): () => ClientProcess {
  const m = { gcMs: 0, gcMajorMs: 0, gcMaxPauseMs: 0, gcCount: 0 };
  const count = (entries: PerformanceEntry[]) => {
    for (const e of entries) {
      m.gcMs += e.duration;
      m.gcCount++;
      m.gcMaxPauseMs = Math.max(m.gcMaxPauseMs, e.duration);
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) m.gcMajorMs += e.duration;
    }
  };
  const obs = new PerformanceObserver((list) => count(list.getEntries()));
  obs.observe({ entryTypes: ["gc"] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  return (): ClientProcess => {
    count(obs.takeRecords());
    obs.disconnect();
    loop.disable();
    return { ...m, loopDelayMaxMs: loop.max / 1e6, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 };
  };
}
