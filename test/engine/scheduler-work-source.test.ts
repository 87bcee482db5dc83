import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { FairScheduler, type CompletionJob } from "@lite/scheduler";
import { createTestEnv, type TestEnv } from "@lite/testing";
import { schedulerWorkSource } from "@lite/engine";

let env: TestEnv;
const clients: Redis[] = [];
const schedulers: FairScheduler[] = [];

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await Promise.all(schedulers.map((s) => s.close()));
  for (const c of clients) c.disconnect();
  await env.close();
});

function scheduler(keys: RedisKeys): FairScheduler {
  const conn = (forBullmq: boolean) => {
    const c = createRedis({ url: env.redisUrl, forBullmq });
    clients.push(c);
    return c;
  };
  const s = new FairScheduler({
    redis: conn(false),
    bullConnection: conn(true),
    keys,
    lockDurationMs: 300,
    stalledIntervalMs: 100,
    autoExtendLocks: false,
    activeIndexGraceMs: 60000,
  });
  schedulers.push(s);
  return s;
}

const job: CompletionJob = {
  version: 1,
  completionId: "cmp_replayed",
  tenantId: "ten_a",
  modelName: "default",
  prompt: "hello",
  seed: "1",
  tierIds: ["t0"],
  mode: "FAST",
  temperature: 0,
  maxTokens: 16,
  costWeight: 1,
  degraded: false,
  enqueuedAtMs: 0,
};

describe("schedulerWorkSource", () => {
  it("hands out a replay whose poison marks cannot be read (not a throw that loses the job it holds), and warns", async () => {
    const keys = new RedisKeys(`${env.redisPrefix}-sws`);
    const dying = scheduler(keys);
    await dying.enqueue(job, 1);
    expect((await dying.next("dying"))!.attemptsStarted).toBe(1);
    await dying.close(); // its worker "dies": the lock lapses and the sweep returns the job

    const warnings: unknown[] = [];
    const survivor = scheduler(keys);
    const source = schedulerWorkSource(survivor, "survivor", {
      progressOf: () => Promise.reject(new Error("connection reset")),
      startsWithoutProgress: 3,
      log: { warn: (obj: unknown) => void warnings.push(obj) } as never,
    });
    let handle = null;
    for (const deadline = Date.now() + 10000; !handle && Date.now() < deadline;)
      handle = await source.next(new Set()).then(
        (h) => h ?? new Promise<null>((r) => setTimeout(() => r(null), 100)),
        (e: Error) => {
          throw new Error(`next() threw with the job held: ${e.message}`);
        },
      );
    expect(handle).not.toBeNull();
    expect(handle!.completionId).toBe("cmp_replayed");
    expect(handle!.deferredFailure).toBeNull();
    expect(warnings).toEqual([{ err: "connection reset", completionId: "cmp_replayed" }]);
    await handle!.complete();
  });
});
