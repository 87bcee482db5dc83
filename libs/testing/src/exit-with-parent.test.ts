import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { EXIT_WITH_PARENT, exitOf } from "./child-process";

/**
 * Every API and worker process the harness spawns preloads exit-with-parent.js: when the
 * process that spawned it dies — even by SIGKILL, which runs no handler of its — it exits
 * instead of running on as an orphan. Here a real parent process spawns a child that would
 * run forever, with the preload (and, for contrast, one without), and is SIGKILLed.
 */
describe("exit-with-parent preload", () => {
  /** running: exists and is not a zombie (an exited orphan waits for init to reap it) */
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    try {
      return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return true; // no procfs: kill(0) is all there is
    }
  };

  async function orphanAfterParentKilled(preload: string[]): Promise<{ pid: number; gone: boolean }> {
    // the parent prints its child's pid, then waits forever
    const script = `
      const { spawn } = require("node:child_process");
      const c = spawn(process.execPath, ${JSON.stringify([...preload, "-e", "setInterval(() => {}, 1000)"])}, {
        stdio: "ignore",
        env: { ...process.env, LITE_EXIT_WITH_PARENT: String(process.pid) },
      });
      process.stdout.write(String(c.pid) + "\\n");
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const pid = await new Promise<number>((resolve) =>
      parent.stdout.once("data", (b: Buffer) => resolve(Number(b.toString().trim()))),
    );
    expect(alive(pid)).toBe(true);
    parent.kill("SIGKILL");
    await exitOf(parent);
    // bounded by a count of checks (the preload looks once a second)
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = !alive(pid);
    }
    return { pid, gone };
  }

  it("a child with the preload exits once its parent was SIGKILLed; one without runs on", async () => {
    const withPreload = await orphanAfterParentKilled(EXIT_WITH_PARENT);
    expect(withPreload.gone).toBe(true);
    const without = await orphanAfterParentKilled([]);
    try {
      expect(without.gone).toBe(false);
    } finally {
      process.kill(without.pid, "SIGKILL");
    }
  });
});
