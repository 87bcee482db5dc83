/**
 * Cross-process behaviour with real child processes: two processes racing never dispatch one
 * job twice, and a SIGKILLed holder's job comes back and is dispatched again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { createTestEnv, type TestEnv } from "@lite/testing";
import { FairScheduler } from "./fair-scheduler";
import type { CompletionJob } from "./job-catalog";

const root = path.resolve(__dirname, "..", "..", "..");
let env: TestEnv;
const clients: Redis[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const c of clients) c.disconnect();
  await env.close();
});

function scheduler(keys: RedisKeys, lockDurationMs: number): FairScheduler {
  const redis = createRedis({ url: env.redisUrl });
  const bull = createRedis({ url: env.redisUrl, forBullmq: true });
  clients.push(redis, bull);
  return new FairScheduler({ redis, bullConnection: bull, keys, lockDurationMs, stalledIntervalMs: 100 });
}

function child(prefix: string, mode: "drain" | "hold", lockMs: number) {
  const c = spawn(
    process.execPath,
    [
      "-r",
      "./scripts/register.js",
      path.join(__dirname, "testing", "dispatch-child.ts"),
      env.redisUrl,
      prefix,
      mode,
      String(lockMs),
    ],
    {
      cwd: root,
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  children.push(c);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: c.stdout! }).on("line", (l) => {
    lines.push(JSON.parse(l));
    waiters.splice(0).forEach((w) => w());
  });
  const until = async (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`child: timed out; saw ${JSON.stringify(lines.slice(-5))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { c, lines, until };
}

function job(tenantId: string, completionId: string): CompletionJob {
  return {
    version: 1,
    completionId,
    tenantId,
    modelName: "m",
    prompt: "p",
    seed: "1",
    tierIds: ["t0"],
    mode: "FAST",
    temperature: 0,
    maxTokens: 8,
    costWeight: 1,
    degraded: false,
    enqueuedAtMs: 0,
  };
}

test("two dispatcher processes racing over 400 jobs of 8 tenants hand out every job exactly once", async () => {
  const prefix = `${env.redisPrefix}-race`;
  const keys = new RedisKeys(prefix);
  const producer = scheduler(keys, 30000);
  const ids: string[] = [];
  for (let i = 0; i < 400; i++) {
    const id = `cmp_p${i}`;
    ids.push(id);
    await producer.enqueue(job(`ten_${i % 8}`, id), 1 + (i % 4));
  }
  const a = child(prefix, "drain", 30000);
  const b = child(prefix, "drain", 30000);
  await Promise.all([a.until((l) => l.ready === true), b.until((l) => l.ready === true)]);
  a.c.stdin!.write("go\n");
  b.c.stdin!.write("go\n");
  await Promise.all([a.until((l) => l.done === true, 40000), b.until((l) => l.done === true, 40000)]);
  const got = [...a.lines, ...b.lines].filter((l) => typeof l.got === "string").map((l) => l.got as string);
  expect(got.length).toBe(400);
  expect(new Set(got)).toEqual(new Set(ids));
  expect(a.lines.some((l) => l.got) && b.lines.some((l) => l.got)).toBe(true); // both really raced
  await producer.close();
}, 60000);

test("a SIGKILLed worker process's job returns to the wait list and is dispatched again", async () => {
  const prefix = `${env.redisPrefix}-kill`;
  const keys = new RedisKeys(prefix);
  const survivor = scheduler(keys, 1500);
  await survivor.enqueue(job("ten_k", "cmp_killed"), 1);
  const holder = child(prefix, "hold", 1500);
  await holder.until((l) => l.held === "cmp_killed");
  await new Promise((r) => setTimeout(r, 2000)); // longer than the lock: the holder renews it meanwhile
  expect(await survivor.next("survivor")).toBeNull();
  holder.c.kill("SIGKILL");
  const deadline = Date.now() + 10000;
  let d = null;
  while (!d && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    d = await survivor.next("survivor");
  }
  expect(d?.completionId).toBe("cmp_killed");
  expect(d!.attemptsStarted).toBe(2);
  await d!.complete({});
  await survivor.close();
}, 60000);
