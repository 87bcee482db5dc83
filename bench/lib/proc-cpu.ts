/**
 * CPU time of processes and of the whole machine, read from Linux's /proc, for benchmarks
 * that explain a throughput figure by where the cores went (the overhead bench: the worker,
 * the API, everything else). Elsewhere (no /proc) every reading is null and the reports show
 * the figure as missing.
 */
import { readFileSync } from "node:fs";

/** clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux build in use) */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used so far, all its threads; `tid` instead
 * reads one thread of it (the process' own id: its main thread). null when unreadable.
 */
function cpuSeconds(pid: number, tid?: number): number | null {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
    // fields after the command name, which may itself hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine so far, all cores (/proc/stat); null when unreadable. */
function machineBusySeconds(): number | null {
  try {
    const [, ...v] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

export interface CpuWindow {
  /** cores in use over the window, by name (CPU seconds ÷ wall seconds); null where unreadable */
  cores: Record<string, number | null>;
  /** the whole machine's busy cores over the window */
  machineCores: number | null;
}

/**
 * Starts a window over these processes (name → pid, or pid and one thread id); `end()`
 * gives each one's cores in use since the start.
 */
export function cpuWindow(processes: Record<string, { pid: number; tid?: number }>): { end(): CpuWindow } {
  const t0 = performance.now();
  const m0 = machineBusySeconds();
  const c0 = Object.fromEntries(Object.entries(processes).map(([k, p]) => [k, cpuSeconds(p.pid, p.tid)]));
  return {
    end() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineBusySeconds();
      const cores: Record<string, number | null> = {};
      for (const [k, p] of Object.entries(processes)) {
        const a = c0[k];
        const b = cpuSeconds(p.pid, p.tid);
        cores[k] = a === null || b === null ? null : (b - a) / wall;
      }
      // busy seconds of all cores per wall second = cores busy
      const machineCores = m0 === null || m1 === null ? null : (m1 - m0) / wall;
      return { cores, machineCores };
    },
  };
}
