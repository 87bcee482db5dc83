/**
 * Preloaded (`node -r`) into every API and worker process the test harness spawns: the
 * process exits once the process that spawned it is gone, however that one ended (SIGKILL,
 * a crash, an aborted benchmark run), instead of running on as an orphan (orphaned workers
 * of an aborted benchmark once ran for 50 minutes). Its parent's death re-parents it, which
 * changes process.ppid; a check at start and once a second notices. The parent is the pid
 * in LITE_EXIT_WITH_PARENT (set by the harness: a parent that died before this ran is
 * still noticed), else the parent at start. Plain JavaScript: it runs before the TypeScript
 * register hook.
 */
"use strict";
const parent = Number(process.env.LITE_EXIT_WITH_PARENT) || process.ppid;
function check() {
  if (process.ppid === parent) return;
  process.stderr.write(`parent process ${parent} is gone: exiting\n`);
  process.exit(1);
}
check();
setInterval(check, 1000).unref();
