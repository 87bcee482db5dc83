/** Process-level behaviour: start-up work, health endpoints, metrics, config errors, SIGTERM drain. */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModel } from "@lite/model";
import { freePort, gqlOk, TEST_ADMIN_KEY, type TestEnv, waitFor, wsConnect } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

const root = path.resolve(__dirname, "..", "..");
let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;
let modelDir: string;

beforeAll(async () => {
  modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-models-"));
  buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
  stack = await startStack({ model: "tiny", modelPreset: null, modelDir });
  ({ env, api } = stack);
});

afterAll(async () => {
  await stack?.close();
  fs.rmSync(modelDir, { recursive: true, force: true });
});

describe("start-up", () => {
  it("registers the manifest's model and tiers (ids verbatim, restricted flag, cost weights) and audits the load", async () => {
    const r = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      "{ models { id name manifestSha256 tiers { id rank placement restricted paramBytes ownerTenantId } } }",
    );
    expect(r.models).toHaveLength(1);
    const m = r.models[0];
    expect(m.id).toBe("tiny");
    expect(m.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(
      m.tiers.map((t: { id: string; placement: string; restricted: boolean }) => [t.id, t.placement, t.restricted]),
    ).toEqual([
      ["tiny.t0", "HOT", false],
      ["tiny.t1", "WARM", false],
      ["tiny.t2", "COLD", false],
      ["tiny.t3", "COLD", true],
    ]);
    const tiers = await env.db.tier.findMany({ orderBy: { rank: "asc" } });
    expect(tiers[0].costWeight).toBe(1);
    expect(tiers[1].costWeight).toBeGreaterThan(1);
    expect((await env.db.model.findUniqueOrThrow({ where: { id: "tiny" } })).isDefault).toBe(true);
    await api.services.auditWriter.flush();
    expect(
      await env.db.auditLog.count({ where: { action: "model.register", resource: "model:tiny", decision: "OK" } }),
    ).toBe(1);
  });

  it("is idempotent: a second server over the same database changes nothing", async () => {
    const second = await stack.startApi();
    try {
      expect(await env.db.apiKey.count({ where: { role: "ADMIN" } })).toBe(1);
      expect(await env.db.priceBook.count()).toBe(1);
      expect(await env.db.tier.count()).toBe(4);
    } finally {
      await second.close();
    }
  });
});

describe("health endpoints", () => {
  it("/healthz 200, /readyz 200, /metrics in Prometheus text with per-tenant labels", async () => {
    expect((await fetch(`${api.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${api.baseUrl}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      200,
      { status: "ready", postgres: true, redis: true, bootstrapped: true },
    ]);
    await gqlOk(api.url, TEST_ADMIN_KEY, "{ me { role } }");
    const metrics = await fetch(`${api.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    const text = await metrics.text();
    expect(text).toMatch(/lite_api_http_requests_total\{route="\/graphql",status="200"\} \d+/);
    expect(text).toMatch(/lite_api_graphql_operations_total\{tenant="-",type="query",outcome="ok"\} \d+/);
  });

  it("/readyz answers 503 while PostgreSQL or Redis is unreachable", async () => {
    const closed = await freePort();
    const noDb = await stack.startApi({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${closed}/nothing` });
    try {
      const r = await fetch(`${noDb.baseUrl}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ postgres: false, redis: true });
      expect((await fetch(`${noDb.baseUrl}/healthz`)).status).toBe(200);
    } finally {
      await noDb.close();
    }
    const noRedis = await stack.startApi({ REDIS_URL: `redis://127.0.0.1:${closed}` });
    try {
      const r = await fetch(`${noRedis.baseUrl}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ postgres: true, redis: false });
    } finally {
      await noRedis.close();
    }
  });
});

describe("the API process", () => {
  const run = (extra: Record<string, string>) =>
    spawn(process.execPath, ["-r", "./scripts/register.js", "apps/api/src/main.ts"], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: env.databaseUrl,
        REDIS_URL: env.redisUrl,
        REDIS_PREFIX: env.redisPrefix,
        ADMIN_API_KEY: TEST_ADMIN_KEY,
        MODEL_DIR: modelDir,
        LOG_LEVEL: "info",
        ...extra,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });

  it("stops on bad configuration with one line naming the variable", async () => {
    const child = run({ PORT: "forty", ADMIN_API_KEY: "short" });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(1);
    expect(err).toMatch(/^config error: PORT must be an integer/m);
    expect(err).toMatch(/^config error: ADMIN_API_KEY must have at least 16 characters/m);
    expect(err).not.toContain("short");
  });

  it("drains HTTP and WebSocket connections on SIGTERM and exits 0; logs are JSON without secrets", async () => {
    const port = await freePort();
    const child = run({ PORT: String(port), HOST: "127.0.0.1" });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    try {
      await waitFor(
        "the API ready",
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200,
        { timeoutMs: 20000, everyMs: 100 },
      );
      const ws = await wsConnect(`ws://127.0.0.1:${port}/graphql`, { authorization: TEST_ADMIN_KEY });
      if (ws.outcome !== "open") throw new Error("ws did not open");
      let closeCode: number | undefined;
      ws.client.on("closed", (e) => (closeCode = (e as { code: number }).code));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await waitFor("the socket closed", () => closeCode !== undefined, { timeoutMs: 2000, everyMs: 20 });
      expect(closeCode).toBe(1001);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    const lines = out.trim().split("\n");
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(out).not.toContain(TEST_ADMIN_KEY);
  }, 40000);
});
