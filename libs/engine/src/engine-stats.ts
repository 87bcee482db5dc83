import type { Logger } from "pino";
import type { EngineStats } from "./engine-context";

/** Logs `engine stats` (steps, tokens/s, mean step and flush time) every `everyMs` while the engine steps. */
export class StatsReporter {
  private last: EngineStats & { at: number };

  constructor(
    private readonly stats: EngineStats,
    private readonly log: Logger,
    private readonly everyMs = 10000,
  ) {
    this.last = { at: performance.now(), ...stats };
  }

  /** Called once per loop turn; logs only when the period is over and steps ran in it. */
  maybeLog(held: number): void {
    if (performance.now() - this.last.at < this.everyMs) return;
    const now = { at: performance.now(), ...this.stats };
    const last = this.last;
    const d = (k: keyof EngineStats) => now[k] - last[k];
    if (d("steps") > 0) {
      this.log.info(
        {
          seconds: Math.round((now.at - last.at) / 100) / 10,
          steps: d("steps"),
          arrivalSteps: d("arrivalSteps"),
          tokens: d("tokens"),
          tokensPerSecond: Math.round((d("tokens") * 1000) / (now.at - last.at)),
          stepMsAvg: +(d("stepMs") / d("steps")).toFixed(2),
          flushMsAvg: +(d("flushMs") / d("steps")).toFixed(2),
          fillMs: Math.round(d("fillMs")),
          idleMs: Math.round(d("idleMs")),
          held,
        },
        "engine stats",
      );
    }
    this.last = now;
  }
}
