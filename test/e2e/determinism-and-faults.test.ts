import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { deriveRoutingSeed, loadModel, resolveModeTiers, type ModelRuntime } from "@lite/model";
import {
  collectTokens,
  COMPLETION_QUERY,
  CREATE_COMPLETION,
  hostPort,
  sleep,
  startTcpProxy,
  waitFor,
  withTimeout,
  wsClient,
  type TcpProxy,
} from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

/**
 * Determinism across workers, batch sizes and the bare CLI; and faults: PostgreSQL or
 * Redis briefly unreachable (through a TCP proxy, so other test files' services are
 * untouched) loses nothing that was accepted and answers new requests with a clear error.
 */
const root = path.resolve(__dirname, "..", "..");
const run = promisify(execFile);

type Row = {
  status: string;
  text: string;
  outputTokens: number;
  finishReason: string;
  seed: string;
  tierSet: string[];
};

async function finished(http: TestStack["admin"], id: string, timeoutMs = 60000): Promise<Row> {
  return waitFor(
    `completion ${id} finished`,
    async () => {
      const r = await http.request<{ completion: Row }>(COMPLETION_QUERY, { id });
      const c = r.data?.completion;
      return c && ["COMPLETED", "FAILED", "CANCELLED"].includes(c.status) ? c : undefined;
    },
    { timeoutMs, everyMs: 100 },
  );
}

async function cliText(
  modelDir: string,
  tenantId: string,
  input: { prompt: string; seed: string; maxTokens: number; temperature: number },
) {
  const { stdout } = await run(
    process.execPath,
    [
      "-r",
      "./scripts/register.js",
      "scripts/generate.ts",
      ...["--prompt", input.prompt, "--mode", "FAST", "--seed", input.seed, "--max-tokens", String(input.maxTokens)],
      ...["--temperature", String(input.temperature)],
      ...["--tenant", tenantId, "--model", "tiny", "--model-dir", modelDir, "--json"],
    ],
    { cwd: root, maxBuffer: 16 << 20 },
  );
  const out = JSON.parse(stdout) as { text: string; tokens: number[] | number[][] };
  const tokens = Array.isArray(out.tokens[0]) ? (out.tokens as number[][])[0] : (out.tokens as number[]);
  return { text: out.text, count: tokens.filter((id) => id !== 257).length };
}

describe("determinism: same prompt, seed and TierSet → same tokens", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 0 });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  it("alone on a batch-1 worker, batched with others on a batch-8 worker, and in the bare CLI", async () => {
    const t = await stack.tenant();
    const other = await stack.tenant();
    const input = { prompt: "The same prompt", maxTokens: 24, mode: "FAST", seed: "1234", temperature: 0.7 };

    // Alone: one worker with one slot.
    const solo = await stack.spawnWorker({ batchSize: 1 });
    const a = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
    const first = await finished(t.http, a.createCompletion.id);
    await solo.stop(10000);

    // Batched: eight at once (the same request twice among other prompts of two tenants).
    await stack.spawnWorker({ batchSize: 8 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await other.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
        input: { ...input, prompt: `noise ${i}`, seed: String(i) },
      });
      ids.push(r.createCompletion.id);
    }
    const b = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
    const c = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
    const [second, third] = await Promise.all([
      finished(t.http, b.createCompletion.id),
      finished(t.http, c.createCompletion.id),
    ]);
    // The other tenant, same prompt and seed: its routing seed is its own.
    const d = await other.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
    const foreign = await finished(other.http, d.createCompletion.id);

    expect(first.status).toBe("COMPLETED");
    expect(first.outputTokens).toBeGreaterThan(0);
    expect(second.text).toBe(first.text);
    expect(third.text).toBe(first.text);
    expect(foreign.text).not.toBe(first.text);
    // The bare decode loop with --tenant derives the seed exactly as the worker does.
    expect((await cliText(stack.modelDir, t.tenantId, input)).text).toBe(first.text);
    expect((await cliText(stack.modelDir, other.tenantId, input)).text).toBe(foreign.text);
  }, 120000);
});

/** The same decode loop in this process (faster than spawning the CLI under load). */
async function predict(
  model: ModelRuntime,
  tenantId: string,
  input: { prompt: string; seed: string; maxTokens: number; temperature: number },
) {
  const batch = model.createBatch();
  batch.add({
    id: "p",
    tenantId,
    promptTokens: model.tokenizer.encode(input.prompt),
    routingSeed: deriveRoutingSeed(tenantId, input.seed),
    tierIds: resolveModeTiers(model.tiers, "FAST"),
    temperature: input.temperature,
    maxTokens: input.maxTokens,
  });
  let text = "";
  let count = 0;
  for (;;) {
    const [out] = await batch.step();
    if (out.tokenId !== model.tokenizer.eos) {
      text += out.text;
      count++;
    }
    if (out.finished) break;
  }
  batch.remove("p");
  return { text, count };
}

/**
 * Tenants whose fault-test completion (the input below, maxTokens 60) generates all 60
 * tokens without EOS, found once with predict() over pinned ids; any id works for the rest.
 */
const FAULT_TENANTS = {
  PostgreSQL: "ten_000000000000000000000000pg",
  Redis: "ten_00000000000000000000000rds",
} as const;

describe("faults: a service briefly unreachable", () => {
  let stack: TestStack;
  let model: ModelRuntime;
  let pgProxy: TcpProxy;
  let redisProxy: TcpProxy;
  beforeAll(async () => {
    pgProxy = await startTcpProxy(hostPort(process.env.DATABASE_URL!, 5432));
    redisProxy = await startTcpProxy(hostPort(process.env.REDIS_URL!, 6379));
    stack = await startE2eStack({
      workers: 0,
      serviceUrl: (service, url) => (service === "postgres" ? pgProxy : redisProxy).url(url),
    });
    model = await loadModel({ modelDir: stack.modelDir, modelName: "tiny" }); // built by startE2eStack
    await stack.spawnWorker({
      batchSize: 4,
      // "Briefly": the 2 s outage is shorter than the job lock, so the worker keeps its job
      // (a lapsed lock and re-dispatch are covered by the SIGKILL recovery test).
      env: { WORKER_STEP_DELAY_MS: "40", WORKER_LOCK_MS: "6000" },
    });
  }, 90000);
  afterAll(async () => {
    await model?.close();
    await stack?.close();
    await pgProxy?.close();
    await redisProxy?.close();
  });

  for (const service of ["PostgreSQL", "Redis"] as const) {
    it(`${service} down for 2 s mid-completion: the completion finishes with every token once, new requests get a clear error`, async () => {
      const proxy = service === "PostgreSQL" ? pgProxy : redisProxy;
      const input = { prompt: `fault ${service}`, maxTokens: 60, mode: "FAST", seed: "77", temperature: 0.5 };
      // The routing seed derives from the tenant id: this pinned tenant's run does not stop
      // early at EOS (checked by the decode loop, run here), so the outage falls mid-completion.
      const t = await stack.tenant({ id: FAULT_TENANTS[service] });
      const expected = await predict(model, t.tenantId, input);
      expect(expected.count).toBe(60);
      const api = t.http;
      const created = await api.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
      const id = created.createCompletion.id;
      await waitFor("first tokens", async () => {
        const r = await api.request<{ completion: Row }>(COMPLETION_QUERY, { id });
        return (r.data?.completion.outputTokens ?? 0) >= 3;
      });

      proxy.cut();
      // Two seconds from the cut, however long the request made during the outage takes to be
      // refused (3-5 s for Redis: ioredis gives up after three reconnect attempts).
      const restored = sleep(2000).then(() => proxy.restore());
      // The outage really falls mid-completion: the stream is not finished yet.
      const streamed = await stack.env.redis.xlen(stack.env.keys.completionStream(t.tenantId, id));
      expect(streamed).toBeGreaterThanOrEqual(3);
      expect(streamed).toBeLessThan(61);
      const during = await api.request(CREATE_COMPLETION, { input: { ...input, seed: "78" } });
      await restored;

      // Refused clearly (503 UNAVAILABLE with Retry-After), or accepted: never a masked 500.
      if (during.errors?.length) {
        expect(during.status).toBe(503);
        expect(during.errors[0].extensions?.code).toBe("UNAVAILABLE");
        expect(Number(during.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }

      const row = await finished(api, id, 90000);
      expect(row.status).toBe("COMPLETED");
      expect(row.outputTokens).toBe(60);
      expect(row.text).toBe(expected.text);
      const ws = wsClient(stack.api.url, t.secret);
      // Bounded: a subscription that never starts (as when the API's stream subscriber stayed
      // dead after the outage) fails here instead of hanging the suite.
      const events = await withTimeout("the token stream after the outage", collectTokens(ws, id), 30000);
      await ws.dispose();
      expect(events.map((e) => e.index)).toEqual([...Array(61).keys()]);
      expect(
        events
          .slice(0, -1)
          .map((e) => e.text)
          .join(""),
      ).toBe(row.text);
      // Every admission counter of the tenant comes back to zero.
      await waitFor("counters released", async () => {
        const u = await stack.admission.usage(t.tenantId);
        return u.concurrent === 0 && u.outstandingTokens === 0;
      });
    }, 240000);
  }
});
