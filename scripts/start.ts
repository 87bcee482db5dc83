/**
 * `npm start`: everything needed to serve, in the foreground until Ctrl-C.
 *   1. services: DATABASE_URL / REDIS_URL, else an embedded PostgreSQL and a local
 *      redis-server with their data under var/ (kept between starts);
 *   2. migrations; 3. the default model (built once into MODEL_DIR, default var/models);
 *   4. MASTER_KEY and ADMIN_API_KEY: from the environment, else generated once into
 *      var/master.key and var/admin.key (mode 0600);
 *   5. one API process and one worker process as children, configured by environment;
 *      prints the GraphQL, dashboard and bull-board URLs and the admin key. Ctrl-C (or SIGTERM) stops the children,
 *      then the services. A child that dies stops everything with exit code 1.
 * `npm start -- --prepare-only` does 1–4 and exits (container init steps).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { bringUpServices, type Services } from "./services";
import { migrateDeploy } from "./migrate";
import { WORKER_NODE_FLAGS } from "@lite/config";
import { ensureModel } from "@lite/model";

const root = path.resolve(__dirname, "..");
const varDir = path.join(root, "var");
const say = (line: string) => process.stderr.write(`[start] ${line}\n`);

/** A secret from the environment, else from `file`, else generated into `file` (0600). */
function secretFromFile(name: string, file: string, generate: () => string, warning?: string): string {
  const fromEnv = process.env[name];
  if (fromEnv) return fromEnv;
  if (fs.existsSync(file)) {
    const kept = fs.readFileSync(file, "utf8").trim();
    if (kept) return kept;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const value = generate();
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  if (warning) say(warning);
  return value;
}

function spawnChild(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  nodeFlags: readonly string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, "-r", "./scripts/register.js", entry], {
    cwd: root,
    env,
    stdio: "inherit",
  });
  child.on("error", (e) => say(`${name} could not start: ${e.message}`));
  return child;
}

function stopChild(child: ChildProcess, timeoutMs = 20000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs = 120000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null) {
    const ok = await fetch(url)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function main(): Promise<number> {
  const prepareOnly = process.argv.includes("--prepare-only");
  const started = Date.now();
  const services: Services = await bringUpServices(process.env, { dataDir: varDir, persistent: true, log: say });
  let children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    await Promise.all(children.map((c) => stopChild(c)));
    await services.stop();
    return code;
  };
  try {
    say(
      `postgres ${services.embeddedPostgres ? "embedded (data in var/postgres)" : "from DATABASE_URL"}, redis ${services.embeddedRedis ? "local redis-server (data in var/redis)" : "from REDIS_URL"}`,
    );
    migrateDeploy(services.databaseUrl);
    const modelDir = path.resolve(root, process.env.MODEL_DIR || path.join("var", "models"));
    const model = await ensureModel({
      modelDir,
      modelName: "default",
      preset: "default",
      publicKey: process.env.MODEL_PUBLIC_KEY || undefined,
    });
    say(
      model.generated
        ? `built the default model into ${modelDir}/default`
        : `default model present in ${modelDir}/default`,
    );
    const masterKey = secretFromFile(
      "MASTER_KEY",
      path.join(varDir, "master.key"),
      () => randomBytes(32).toString("base64"),
      "WARNING: MASTER_KEY is unset; generated one into var/master.key (0600). Back it up: tenant data keys are wrapped with it.",
    );
    const adminKey = secretFromFile(
      "ADMIN_API_KEY",
      path.join(varDir, "admin.key"),
      () => `lite_admin_${randomBytes(24).toString("base64url")}`,
    );
    if (prepareOnly) {
      say(`prepared in ${Date.now() - started} ms`);
      return await stopAll(0);
    }

    const port = process.env.PORT || "4000";
    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: services.databaseUrl,
      REDIS_URL: services.redisUrl,
      MODEL_DIR: modelDir,
      MASTER_KEY: masterKey,
      ADMIN_API_KEY: adminKey,
      PORT: port,
    };
    const api = spawnChild("api", "apps/api/src/main.ts", childEnv);
    children.push(api);
    const workerEntry = path.join(root, "apps", "worker", "src", "main.ts");
    if (fs.existsSync(workerEntry))
      children.push(spawnChild("worker", "apps/worker/src/main.ts", childEnv, WORKER_NODE_FLAGS));
    else say("apps/worker/src/main.ts does not exist yet: running without a worker");

    for (const child of children) {
      child.once("exit", (code, signal) => {
        if (stopping) return;
        say(`a child process exited (${signal ?? code}); stopping everything`);
        void stopAll(1).then((c) => process.exit(c));
      });
    }
    const onSignal = (signal: NodeJS.Signals) => {
      say(`${signal}: stopping the API and worker, then the services`);
      void stopAll(0).then((c) => process.exit(c));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    if (!(await waitReady(`http://127.0.0.1:${port}/readyz`, api))) {
      say("the API did not become ready");
      return await stopAll(1);
    }
    process.stdout.write(
      `\nGraphQL:   http://127.0.0.1:${port}/graphql  (WebSocket ws://127.0.0.1:${port}/graphql)\n` +
        `Dashboard: http://127.0.0.1:${port}/dashboard/  (log in with an API key)\n` +
        `Queues:    http://127.0.0.1:${port}/admin/queues  (bull-board; password: the admin key)\n` +
        `Admin key: ${adminKey}\n` +
        `Ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Ctrl-C stops everything.\n\n`,
    );
    return await new Promise<number>(() => undefined); // runs until a signal or a child exit
  } catch (e) {
    say(e instanceof Error ? e.message : String(e));
    children = children.filter((c) => c.exitCode === null);
    return stopAll(1);
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
