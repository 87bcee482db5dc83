/**
 * The static checks of a whole `npm test` run, and `npm run check` alone: through turbo with
 * its local cache (.turbo/), so a second run with no change replays them ("FULL TURBO"):
 *   - typecheck  one `tsc` program over the whole tree (incremental): per-package programs
 *                would re-check every dependency's sources again, ~4× the CPU on 2 cores;
 *   - lint       eslint over the whole tree (its own per-file cache);
 *   - boundaries dependency-cruiser rules and package.json declarations (check-boundaries.ts);
 *   - test:unit  per package, the unit tests of every package that declares the script: those
 *                need no services (turbo passes them no DATABASE_URL / REDIS_URL), and the
 *                jest run against services then skips those packages (unitTestedDirs).
 * Then prettier --check over the whole repository (its own content cache).
 * Inputs and environment of each task are declared in turbo.json.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(__dirname, "..");
const UNIT_TASK = "test:unit";
const TURBO_TASKS = ["typecheck", "lint", "boundaries", UNIT_TASK];

/** Workspace directories (relative) whose package.json has a `test:unit` script. */
export function unitTestedDirs(): string[] {
  const workspaces = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { workspaces: string[] })
    .workspaces;
  return workspaces.flatMap((glob) => {
    const parent = glob.replace(/\/\*$/, "");
    return fs.readdirSync(path.join(root, parent)).flatMap((name) => {
      const file = path.join(root, parent, name, "package.json");
      if (!fs.existsSync(file)) return [];
      const scripts = (JSON.parse(fs.readFileSync(file, "utf8")) as { scripts?: Record<string, string> }).scripts;
      return scripts?.[UNIT_TASK] ? [`${parent}/${name}`] : [];
    });
  });
}

function run(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env });
  if (r.status !== 0) {
    console.error(`static checks: ${name} failed (${path.basename(cmd)} ${args.join(" ")})`);
    return false;
  }
  console.error(`static checks: ${name} ok (${Date.now() - started} ms)`);
  return true;
}

export function staticChecks(): boolean {
  const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
  // Offline and local only: no telemetry, no update check, no remote cache.
  const turboEnv = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" };
  const turbo = run(
    TURBO_TASKS.join(", "),
    bin("turbo"),
    [
      "run",
      ...TURBO_TASKS,
      "--cache=local:rw",
      "--concurrency=2",
      "--continue=always",
      "--output-logs=errors-only",
      "--log-order=grouped",
    ],
    turboEnv,
  );
  const format = run("format", bin("prettier"), [
    "--check",
    "--cache",
    "--cache-strategy",
    "content",
    "--log-level",
    "warn",
    ".",
  ]);
  return turbo && format;
}

if (require.main === module) process.exit(staticChecks() ? 0 : 1);
