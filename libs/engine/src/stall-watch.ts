import type { EngineContext } from "./engine-context";

/** Held sequences reported at most, per warning. */
const MAX_REPORTED = 32;

/**
 * Beside the loop, on a timer (a step that never returns stops the loop, not the timer):
 * while sequences are held and no token has been streamed for `stallWarnMs`, warn, at most
 * once per period, saying where the loop is and for how long, whether a flush is pending,
 * and what each held sequence waits for (its batch's `waiting`: an expert load, a timing pad,
 * KV room; none when it could step). Why: a rare CI failure where a freshly started worker
 * held a completion and streamed nothing for 100 s without a log line; the next one names
 * its cause. Returns the stop.
 */
export function watchStalls(ctx: EngineContext): () => void {
  const every = ctx.opts.stallWarnMs;
  if (every <= 0) return () => undefined;
  let tokens = ctx.stats.tokens;
  let since = performance.now();
  let warnedAt = -Infinity;
  const timer = setInterval(
    () => {
      const now = performance.now();
      if (ctx.running.size === 0 || ctx.stats.tokens !== tokens) {
        tokens = ctx.stats.tokens;
        since = now;
        warnedAt = -Infinity;
        return;
      }
      if (now - since < every || now - warnedAt < every) return;
      warnedAt = now;
      const held = [...ctx.running.values()];
      ctx.deps.logger.warn(
        {
          stalledMs: Math.round(now - since),
          loop: ctx.phase.name,
          loopMs: Math.round(now - ctx.phase.since),
          flushPending: ctx.pendingFlush !== undefined,
          starting: ctx.starting,
          finalising: ctx.finalising.size,
          heldCount: held.length,
          held: held.slice(0, MAX_REPORTED).map((r) => ({
            completionId: r.spec.completionId,
            tenantId: r.spec.tenantId,
            waiting: r.batch.waiting(r.spec.completionId) ?? "none",
            entered: r.entered ?? false,
            tokens: r.tokenIds.length,
            lockLost: r.handle.lockLost,
          })),
        },
        "held sequences streamed no token for a while",
      );
    },
    Math.max(10, Math.floor(every / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}
