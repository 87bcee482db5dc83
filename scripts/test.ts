/**
 * `npm test`: on a whole run (no jest arguments) first type-checks, lints and checks the
 * formatting of the tree (tsc, eslint, prettier), then brings up the services exactly as `npm start` would (embedded ones when
 * DATABASE_URL / REDIS_URL are unset, with throw-away data), migrates a template
 * database that each test file clones, runs jest with any extra arguments, and removes
 * everything it created.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { adminQuery, withDatabase } from "../libs/testing/src/services";
import { bringUpServices } from "./services";
import { migrateDeploy } from "./migrate";

const root = path.resolve(__dirname, "..");

function staticChecks(): boolean {
  const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
  const checks: Array<[string, string, string[]]> = [
    ["type-check", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]],
    ["lint", bin("eslint"), ["."]],
    ["format", bin("prettier"), ["--check", "--log-level", "warn", "."]],
  ];
  for (const [name, cmd, args] of checks) {
    const started = Date.now();
    const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`static checks: ${name} failed (${cmd} ${args.join(" ")})`);
      return false;
    }
    console.error(`static checks: ${name} ok (${Date.now() - started} ms)`);
  }
  return true;
}

async function main(): Promise<number> {
  if (process.argv.length <= 2 && !staticChecks()) return 1;
  const runDir = path.join(root, "var", `test-run-${process.pid}`);
  fs.mkdirSync(runDir, { recursive: true });
  const started = Date.now();
  const services = await bringUpServices(process.env, {
    dataDir: runDir,
    persistent: false,
    log: (l) => console.error(l),
  });
  console.error(
    `test services: postgres ${services.embeddedPostgres ? "embedded" : "from DATABASE_URL"}, ` +
      `redis ${services.embeddedRedis ? "local redis-server" : "from REDIS_URL"} (${Date.now() - started} ms)`,
  );
  const template = `lite_tpl_${process.pid}_${Date.now().toString(36)}`;
  let code = 1;
  try {
    await adminQuery(services.databaseUrl, `CREATE DATABASE "${template}"`);
    migrateDeploy(withDatabase(services.databaseUrl, template));
    const env = {
      ...process.env,
      DATABASE_URL: services.databaseUrl,
      REDIS_URL: services.redisUrl,
      TEST_TEMPLATE_DB: template,
      TEST_RUN_DIR: runDir,
      LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
    };
    const jest = path.join(root, "node_modules", "jest", "bin", "jest.js");
    code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [jest, ...process.argv.slice(2)], { cwd: root, env, stdio: "inherit" });
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      process.on("SIGINT", forward);
      process.on("SIGTERM", forward);
      child.on("exit", (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
  } finally {
    await adminQuery(services.databaseUrl, `DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => undefined);
    await services.stop();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
