import * as fs from "node:fs";
import * as os from "node:os";

/**
 * Lowers this process' CPU priority to `nice` (0..19; higher is lower priority), so that an API
 * on the same cores, whose work is short and latency-bound, preempts the decode steps, which
 * are long and throughput-bound (WORKER_NICE). Nothing is lost when the host is otherwise idle:
 * a nice value only weighs runnable threads against each other (on Linux, those of one
 * autogroup: the processes of one session, such as those `npm start` runs). The other side:
 * any busy process of that session starves the worker as much.
 *
 * On Linux a nice value belongs to a thread (setpriority(PRIO_PROCESS, 0) changes only the
 * calling one), and the runtime's threads (garbage collection, the libuv pool that runs the
 * ONNX sessions) already exist: every thread in /proc/self/task is set, and threads started
 * later inherit their creator's. Elsewhere the call covers the process.
 * Returns the threads set and those that could not be (a thread that exited meanwhile).
 */
export function lowerProcessPriority(nice: number): { threads: number; failed: number } {
  let tids: number[] = [];
  try {
    tids = fs.readdirSync("/proc/self/task").map(Number).filter(Number.isInteger);
  } catch {
    // no procfs: not Linux, where the process has one priority
  }
  if (tids.length === 0) {
    os.setPriority(0, nice);
    return { threads: 1, failed: 0 };
  }
  let failed = 0;
  for (const tid of tids) {
    try {
      // never raise a thread's priority (that needs privileges): only lower it
      if (os.getPriority(tid) < nice) os.setPriority(tid, nice);
    } catch {
      failed++;
    }
  }
  return { threads: tids.length - failed, failed };
}
