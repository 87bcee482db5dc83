import type { ChildProcess } from "node:child_process";
import net from "node:net";
import * as path from "node:path";

/** The repository root (API and worker entry points are spawned from it). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

/**
 * Node arguments of every process the harness spawns (API, worker): preload
 * exit-with-parent.js, so a child exits within a second of its parent's end, however that
 * ended (an aborted test or benchmark run leaves no orphan); its environment takes
 * `exitWithParentEnv()`.
 */
export const EXIT_WITH_PARENT = ["-r", path.join(__dirname, "exit-with-parent.js")];

/** The variable that names the parent to exit-with-parent.js: this process. */
export const exitWithParentEnv = (): Record<string, string> => ({ LITE_EXIT_WITH_PARENT: String(process.pid) });

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** process.env without unset entries, with `over` on top (an undefined value removes the variable). */
export function childEnv(over: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Keeps the last `keep` lines a child wrote (stdout and stderr) for failure messages. */
export function captureLines(
  child: ChildProcess,
  opts: { keep: number; echo?: boolean; onLine?: (line: string) => void },
): () => string {
  const lines: string[] = [];
  const push = (line: string) => {
    if (!line) return;
    lines.push(line);
    if (lines.length > opts.keep) lines.shift();
    opts.onLine?.(line);
  };
  const follow = (stream: NodeJS.ReadableStream | null) => {
    // A chunk may end mid-line: the rest of that line comes with the next chunk.
    let partial = "";
    stream?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      if (opts.echo) process.stderr.write(text);
      const parts = (partial + text).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) push(line);
    });
    stream?.on("end", () => push(partial));
  };
  follow(child.stdout);
  follow(child.stderr);
  return () => lines.join("\n");
}

/** Resolves with the exit code, or the signal name. */
export function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode ?? -1);
    else child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves with how the child ended. */
export async function stopChild(
  child: ChildProcess,
  exited: Promise<number | string>,
  timeoutMs: number,
): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}
