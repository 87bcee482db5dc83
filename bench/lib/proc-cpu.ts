/**
 * CPU time of processes and of the whole machine, read from Linux's /proc, for benchmarks
 * that explain a throughput figure by where the cores went (the overhead bench: the worker,
 * the API, everything else). Elsewhere (no /proc) every reading is null and the figures are
 * left out of the report.
 */
import { readFileSync } from "node:fs";

/** clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux build in use) */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used so far, all its threads; `tid` instead
 * reads one thread of it (the process' own id: its main thread). null when unreadable.
 */
export function cpuSeconds(pid: number, tid?: number): number | null {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
    // fields after the command name, which may itself hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** The machine's busy and total CPU seconds so far, over all cores (/proc/stat); null when unreadable. */
export function machineSeconds(): { busy: number; total: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [, ...ticks] = line.trim().split(/\s+/);
    const n = ticks.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    // idle and iowait are the cores' free time
    const free = (n[3] ?? 0) + (n[4] ?? 0);
    return { busy: (total - free) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
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
  const m0 = machineSeconds();
  const c0 = Object.fromEntries(Object.entries(processes).map(([k, p]) => [k, cpuSeconds(p.pid, p.tid)]));
  return {
    end() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineSeconds();
      const cores: Record<string, number | null> = {};
      for (const [k, p] of Object.entries(processes)) {
        const a = c0[k];
        const b = cpuSeconds(p.pid, p.tid);
        cores[k] = a === null || b === null ? null : (b - a) / wall;
      }
      // /proc/stat's first line sums every core's ticks: busy seconds per wall second = cores
      const machineCores = m0 && m1 ? (m1.busy - m0.busy) / wall : null;
      return { cores, machineCores };
    },
  };
}
