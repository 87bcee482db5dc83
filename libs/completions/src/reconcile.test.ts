/**
 * The reconciler against real PostgreSQL and Redis (issue 9, finding 1): createCompletion
 * interrupted at each step boundary — the fault hook throws there, which leaves the stores
 * exactly as a process killed at that point would (a throw ends no intent and runs no
 * cleanup on these paths) — then one reconciler pass past the grace: no reservation leaks, no
 * completion stays QUEUED without a dispatchable job, no intent is left.
 */
import pino from "pino";
import { Registry } from "prom-client";
import { systemClock, type Clock } from "@lite/core";
import type { AuditSink, Principal } from "@lite/auth";
import { createRedis, type Redis } from "@lite/redis";
import { Admission, FairScheduler } from "@lite/scheduler";
import { TokenStreams } from "@lite/stream";
import { createApiCompletionMetrics } from "@lite/telemetry";
import { createTenant, createTestEnv, seedModel, type TenantWithKey, type TestEnv } from "@lite/testing";
import {
  createCompletion,
  CreateIntents,
  reconcileOnce,
  type CompletionInput,
  type CompletionResources,
  type CreateStep,
  type ReconcileResources,
} from "./index";

let env: TestEnv;
let bull: Redis;
let admission: Admission;
let streams: TokenStreams;
let intents: CreateIntents;
/** the fault armed for the next create */
let armed: CreateStep | null = null;
const fault = (step: string) => {
  if (step === armed) throw new Error(`injected fault at ${step}`);
};
let scheduler: FairScheduler;
let res: CompletionResources;
let later: Clock;
let rec: ReconcileResources;

beforeAll(async () => {
  env = await createTestEnv();
  await seedModel(env.db);
  bull = createRedis({ url: env.redisUrl, forBullmq: true });
  scheduler = new FairScheduler({ redis: env.redis, bullConnection: bull, keys: env.keys });
  streams = new TokenStreams({ redis: env.redis, keys: env.keys, ttlSeconds: 60 });
  admission = new Admission({ redis: env.redis, keys: env.keys, maxQueuedTokens: 1e9 });
  intents = new CreateIntents(env.redis, env.keys);
  const audit: AuditSink = { record: async () => undefined };
  const log = pino({ level: "silent" });
  res = {
    db: env.db,
    admission,
    scheduler,
    streams,
    audit,
    clock: systemClock,
    log,
    metrics: createApiCompletionMetrics(new Registry()),
    inputLimits: { maxPromptBytes: 1024, maxOutputTokens: 256 },
    maxContextTokens: () => 128,
    intents,
    faultAt: fault,
  };
  // the reconciler runs "a minute later": every intent is past its grace
  later = { nowMs: () => Date.now() + 60_000 };
  rec = { db: env.db, admission, scheduler, streams, intents, clock: later, log };
});

afterAll(async () => {
  await streams.close();
  await scheduler.close();
  bull.disconnect();
  await env.close();
});

const principalOf = (t: TenantWithKey): Principal => ({ role: "TENANT", apiKeyId: t.apiKeyId, tenantId: t.tenantId });
const input = (extra: Partial<CompletionInput> = {}): CompletionInput => ({
  prompt: "crash me",
  maxTokens: 8,
  mode: "FAST",
  ...extra,
});

/** A create interrupted at `step`; returns the completion id it had chosen. */
async function interrupted(t: TenantWithKey, step: CreateStep, extra: Partial<CompletionInput> = {}) {
  armed = step;
  try {
    await expect(createCompletion(res, principalOf(t), input(extra))).rejects.toThrow(`injected fault at ${step}`);
  } finally {
    armed = null;
  }
  const pending = await intents.olderThan(Date.now() + 1, 1000);
  const mine = pending.filter((i) => i.tenantId === t.tenantId);
  expect(mine).toHaveLength(1);
  return mine[0].completionId;
}

const usage = (t: TenantWithKey) => admission.usage(t.tenantId);
const ready = async (t: TenantWithKey) => (await env.redis.zscore(env.keys.schedReady(), t.tenantId)) !== null;

describe("the reconciler repairs a create interrupted", () => {
  test("after its intent: nothing reserved, the intent goes", async () => {
    const t = await createTenant(env.db);
    await interrupted(t, "intent");
    expect((await reconcileOnce(rec, { graceMs: 10_000 })).repairs).toMatchObject({ abandoned: 1 });
    expect(await usage(t)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
    expect(await intents.olderThan(Date.now() + 1, 1000)).toEqual([]);
  });

  test("after admission (no row): the reservation is given back, the global queued total too", async () => {
    const t = await createTenant(env.db);
    const globalBefore = (await usage(t)).queuedTokensGlobal;
    const id = await interrupted(t, "admitted");
    expect(await usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    expect((await reconcileOnce(rec, { graceMs: 10_000 })).repairs).toMatchObject({ abandoned: 1 });
    expect(await usage(t)).toMatchObject({ concurrent: 0, outstandingTokens: 0, queuedTokensGlobal: globalBefore });
    expect(await env.db.completion.findUnique({ where: { id } })).toBeNull();
  });

  test("after the row, without an idempotency key: FAILED, nothing billed, the reservation settled", async () => {
    const t = await createTenant(env.db);
    const id = await interrupted(t, "row");
    expect((await env.db.completion.findUniqueOrThrow({ where: { id } })).status).toBe("QUEUED");
    expect((await reconcileOnce(rec, { graceMs: 10_000 })).repairs).toMatchObject({ failed: 1 });
    expect(await env.db.completion.findUniqueOrThrow({ where: { id } })).toMatchObject({
      status: "FAILED",
      finishReason: "ERROR",
      outputTokens: 0,
    });
    expect(await env.db.usageEvent.count({ where: { completionId: id } })).toBe(0);
    expect(await usage(t)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });

  test("after the row, with an idempotency key: the job is queued from the row and the tenant made ready", async () => {
    const t = await createTenant(env.db);
    const id = await interrupted(t, "row", { idempotencyKey: "retry-me-1" });
    expect(await scheduler.jobState(t.tenantId, id)).toBe("unknown");
    expect((await reconcileOnce(rec, { graceMs: 10_000 })).repairs).toMatchObject({ requeued: 1 });
    expect(await scheduler.jobState(t.tenantId, id)).toBe("waiting");
    expect(await ready(t)).toBe(true);
    // the reservation stays: the completion will run and settle it
    expect(await usage(t)).toMatchObject({ concurrent: 1 });
    // the client's retry gets this very completion
    const again = await createCompletion(res, principalOf(t), input({ idempotencyKey: "retry-me-1" }));
    expect(again.ok && again.value.id).toBe(id);
  });

  test("a repair that ended the row but could not settle: the next pass settles it", async () => {
    // Found by the 20-kill campaign under load: the reservation of a completion the
    // reconciler had failed stayed held (concurrent 1) once its settle timed out.
    const t = await createTenant(env.db);
    const id = await interrupted(t, "row");
    let refusals = 1;
    const flaky: ReconcileResources = {
      ...rec,
      admission: {
        abandon: (...a) => admission.abandon(...a),
        settle: async (...a) => {
          if (refusals-- > 0) throw new Error("Command timed out");
          return admission.settle(...a);
        },
      },
    };
    expect(await reconcileOnce(flaky, { graceMs: 10_000 })).toMatchObject({ unrepaired: 1 });
    expect((await env.db.completion.findUniqueOrThrow({ where: { id } })).status).toBe("FAILED");
    expect(await usage(t)).toMatchObject({ concurrent: 1 });
    expect((await reconcileOnce(flaky, { graceMs: 10_000 })).repairs).toMatchObject({ settled: 1 });
    expect(await usage(t)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
    expect(await intents.olderThan(Date.now() + 1, 1000)).toEqual([]);
  });

  test("between the job's add and the ready mark: the tenant is made ready", async () => {
    // A throw there is the enqueue failing (createCompletion ends it FAILED), not a crash:
    // the crash's state is built directly — a create whose tenant never became ready.
    const t = await createTenant(env.db);
    const done = await createCompletion(res, principalOf(t), input());
    if (!done.ok) throw new Error(done.error.message);
    await env.redis.zrem(env.keys.schedReady(), t.tenantId);
    await intents.begin(t.tenantId, done.value.id, Date.now());
    expect(await scheduler.jobState(t.tenantId, done.value.id)).toBe("waiting");
    expect((await reconcileOnce(rec, { graceMs: 10_000 })).repairs).toMatchObject({ "made-ready": 1 });
    expect(await ready(t)).toBe(true);
  });

  test("an intent the create could not remove does not hold or fail its answer; the reconciler removes it", async () => {
    const t = await createTenant(env.db);
    const failingEnd = Object.assign(Object.create(intents) as CreateIntents, {
      end: () => Promise.reject(new Error("Connection is closed.")),
    });
    const done = await createCompletion({ ...res, intents: failingEnd }, principalOf(t), input());
    if (!done.ok) throw new Error(done.error.message);
    const left = await intents.olderThan(Date.now() + 1, 1000);
    expect(left.filter((i) => i.tenantId === t.tenantId)).toEqual([
      expect.objectContaining({ completionId: done.value.id }),
    ]);
    await reconcileOnce(rec, { graceMs: 10_000 });
    expect((await intents.olderThan(Date.now() + 1, 1000)).filter((i) => i.tenantId === t.tenantId)).toEqual([]);
    expect(await usage(t)).toMatchObject({ concurrent: 1 });
    expect(await scheduler.jobState(t.tenantId, done.value.id)).toBe("waiting");
  });

  test("a create still within its grace is left alone; a finished create leaves no intent", async () => {
    const t = await createTenant(env.db);
    const id = await interrupted(t, "admitted");
    const now = { ...rec, clock: systemClock };
    expect((await reconcileOnce(now, { graceMs: 10_000 })).checked).toBe(0);
    expect(await usage(t)).toMatchObject({ concurrent: 1 });
    await reconcileOnce(rec, { graceMs: 10_000 });
    expect(await env.db.completion.findUnique({ where: { id } })).toBeNull();

    const done = await createCompletion(res, principalOf(t), input());
    expect(done.ok).toBe(true);
    expect((await intents.olderThan(Date.now() + 1, 1000)).filter((i) => i.tenantId === t.tenantId)).toEqual([]);
    // and a second pass over nothing repairs nothing
    expect(await reconcileOnce(rec, { graceMs: 10_000 })).toMatchObject({ checked: 0 });
  });
});
