import { execFileSync } from "node:child_process";
import * as path from "node:path";

const root = path.resolve(__dirname, "../../..");

/**
 * In a child node process (a nice value cannot be raised again without privileges, so never
 * in the test runner's own): lower the priority, start a thread afterwards, report every
 * thread's nice value from /proc (field 19 of /proc/<pid>/task/<tid>/stat).
 */
function niceValuesAfter(nice: number): {
  before: number[];
  after: number[];
  set: { threads: number; failed: number };
} {
  const script = `
    const fs = require("node:fs");
    const { Worker } = require("node:worker_threads");
    const { lowerProcessPriority } = require("./apps/worker/src/process-priority");
    const niceOf = () => fs.readdirSync("/proc/self/task").map((t) => {
      const stat = fs.readFileSync("/proc/self/task/" + t + "/stat", "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
    });
    const before = niceOf();
    const set = lowerProcessPriority(${nice});
    const w = new Worker("setInterval(() => {}, 1000)", { eval: true });
    w.on("online", () => {
      const after = niceOf();
      w.terminate().then(() => { process.stdout.write(JSON.stringify({ before, after, set })); });
    });`;
  const out = execFileSync(process.execPath, ["-r", "./scripts/register.js", "-e", script], {
    cwd: root,
    encoding: "utf8",
  });
  return JSON.parse(out);
}

const linux = process.platform === "linux";

describe("lowerProcessPriority (WORKER_NICE)", () => {
  (linux ? it : it.skip)("sets every thread of the process, and threads started later inherit it", () => {
    const { before, after, set } = niceValuesAfter(10);
    expect(before.length).toBeGreaterThan(1); // node has threads of its own (GC, libuv)
    expect(before.every((n) => n < 10)).toBe(true);
    expect(set.failed).toBe(0);
    expect(set.threads).toBe(before.length);
    expect(after.length).toBeGreaterThan(before.length); // the Worker's thread(s)
    expect(after.every((n) => n === 10)).toBe(true);
  });

  (linux ? it : it.skip)("takes the highest nice value, 19", () => {
    const { after } = niceValuesAfter(19);
    expect(after.every((n) => n === 19)).toBe(true);
  });
});
