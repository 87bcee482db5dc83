/**
 * `npm test`: on a whole run (no jest arguments) first runs the static checks and the unit
 * tests that need no services (static-checks.ts: through turbo, cached), then brings up the
 * services exactly as `npm start` would (embedded ones when DATABASE_URL / REDIS_URL are
 * unset, with throw-away data), migrates a template database that each test file clones,
 * runs jest (a whole run: every suite turbo did not already run; otherwise with the given
 * arguments), and removes everything it created.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { adminQuery, withDatabase } from "@lite/testing";
import { bringUpServices } from "./services";
import { migrateDeploy } from "./migrate";
import { staticChecks, unitTestedDirs } from "./static-checks";

const root = path.resolve(__dirname, "..");

/**
 * A whole run skips the packages whose unit tests turbo already ran (and cached) in the
 * static checks; arguments given to `npm test -- …` go to jest as they are.
 */
function jestArgs(wholeRun: boolean): string[] {
  if (!wholeRun) return process.argv.slice(2);
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return unitTestedDirs().map((dir) => `--testPathIgnorePatterns=^${escape(path.join(root, dir))}/`);
}

async function main(): Promise<number> {
  const wholeRun = process.argv.length <= 2;
  if (wholeRun && !staticChecks()) return 1;
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
      const child = spawn(process.execPath, [jest, ...jestArgs(wholeRun)], { cwd: root, env, stdio: "inherit" });
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
