import { fork } from "node:child_process";
import * as path from "node:path";
import type { BenchContext } from "./bench-types";

/**
 * A bench client in a node process of its own (bench/lib/abuse-victim.ts, isolation-light.ts),
 * forked once and asked one thing at a time over IPC: `ask(message)` resolves with its
 * answer. The child says "ready" first; it gets the spec in the environment variable
 * `envName` (JSON). It runs with --expose-gc (it collects before each window) and a 32 MB
 * young generation (fewer scavenges).
 */
export function forkClientProcess(ctx: BenchContext, file: string, envName: string, spec: unknown) {
  const child = fork(path.join(__dirname, file), [], {
    execArgv: ["--expose-gc", "--max-semi-space-size=32", "-r", path.join(ctx.rootDir, "scripts", "register.js")],
    env: { ...process.env, [envName]: JSON.stringify(spec) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${file} exited ${code}`));
      child.once("exit", onExit);
      child.once("message", (m) => {
        child.off("exit", onExit);
        resolve(m);
      });
    });
  const ready = next();
  return {
    async ask(message: unknown): Promise<unknown> {
      await ready;
      const answer = next();
      child.send(message as object);
      return answer;
    },
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/**
 * The child's side: answers each message with `answer(message)` (or `{ error }`), one at a
 * time, after saying "ready"; "exit" (or the parent going away) ends the process.
 */
export function serveParent(answer: (message: unknown) => Promise<unknown>): void {
  let queue = Promise.resolve();
  process.on("message", (m: unknown) => {
    if (m === "exit") return void queue.then(() => process.exit(0));
    queue = queue.then(async () => {
      const reply = await answer(m).catch((e: Error) => ({ error: e.message }));
      await new Promise<void>((resolve) => process.send!(reply as object, () => resolve()));
    });
  });
  process.on("disconnect", () => process.exit(0));
  process.send!("ready");
}
