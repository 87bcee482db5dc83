import pino from "pino";
import { Registry } from "prom-client";
import { systemClock, type Result } from "@lite/core";
import type { AuditInput, AuditSink, Principal } from "@lite/auth";
import { createRedis, type Redis } from "@lite/redis";
import { Admission, FairScheduler } from "@lite/scheduler";
import { TokenStreams, type TokenEvent } from "@lite/stream";
import { createApiCompletionMetrics } from "@lite/telemetry";
import { createTenant, createTestEnv, seedModel, type TenantWithKey, type TestEnv } from "@lite/testing";
import {
  cancelCompletion,
  CompletionRowStore,
  CreateIntents,
  createCompletion,
  endCompletion,
  endStream,
  endUnheld,
  findCompletion,
  tokenEvents,
  withLiveText,
  type CompletionEndSteps,
  type CompletionInput,
  type CompletionResources,
  type CompletionView,
} from "./index";

/**
 * The lifecycle against real PostgreSQL and Redis: create → (worker) → end, with the API
 * and the worker both ending the same completion. Only the audit sink is a hand-written
 * fake (our own port); admission, the scheduler and the streams are the real libraries.
 */
let env: TestEnv;
let bull: Redis;
let scheduler: FairScheduler;
let streams: TokenStreams;
let admission: Admission;
let res: CompletionResources;
const audited: AuditInput[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  await seedModel(env.db);
  bull = createRedis({ url: env.redisUrl, forBullmq: true });
  scheduler = new FairScheduler({ redis: env.redis, bullConnection: bull, keys: env.keys });
  streams = new TokenStreams({ redis: env.redis, keys: env.keys, ttlSeconds: 60 });
  admission = new Admission({ redis: env.redis, keys: env.keys, maxQueuedTokens: 1e9 });
  const audit: AuditSink = { record: async (...events) => void audited.push(...events) };
  res = {
    db: env.db,
    admission,
    scheduler,
    streams,
    audit,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createApiCompletionMetrics(new Registry()),
    inputLimits: { maxPromptBytes: 1024, maxOutputTokens: 256 },
    maxContextTokens: () => 128,
    intents: new CreateIntents(env.redis, env.keys),
  };
});

afterAll(async () => {
  await streams.close();
  await scheduler.close();
  bull.disconnect();
  await env.close();
});

const principalOf = (t: TenantWithKey): Principal => ({ role: "TENANT", apiKeyId: t.apiKeyId, tenantId: t.tenantId });
const input = (extra: Partial<CompletionInput> = {}): CompletionInput => ({
  prompt: "hello",
  maxTokens: 8,
  mode: "FAST",
  ...extra,
});

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function create(t: TenantWithKey, extra: Partial<CompletionInput> = {}): Promise<CompletionView> {
  return value(await createCompletion(res, principalOf(t), input(extra)));
}

async function row(id: string) {
  return env.db.completion.findUniqueOrThrow({ where: { id } });
}

async function events(tenantId: string, id: string): Promise<TokenEvent[]> {
  return streams.readAll(tenantId, id);
}

const tokens = (n: number) =>
  Array.from({ length: n }, (_, index) => ({
    version: 1 as const,
    index,
    tokenId: 100 + index,
    text: String.fromCharCode(97 + index),
    done: false,
    finishReason: null,
  }));

/** The worker's side, wired as the batch engine's deps are: the row store, the stream, admission. */
const workerSteps = (): CompletionEndSteps => ({
  store: new CompletionRowStore(env.db),
  tokens: { finish: (tenantId, id, n, reason) => endStream(streams, tenantId, id, n, reason) },
  admission,
});

describe("endCompletion is idempotent across the API and the worker", () => {
  test("worker finishes, then the API ends it too: first outcome kept, one done event, one release", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    const other = await create(t); // keeps the tenant's counters above zero: a double release would show
    await new CompletionRowStore(env.db).markRunning(c.id, new Date());
    await streams.append(t.tenantId, c.id, tokens(3));

    const end = { tenantId: t.tenantId, completionId: c.id, finishedAt: new Date() };
    await endCompletion(workerSteps(), { ...end, finishReason: "STOP", text: "abc", outputTokens: 3 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED");
    // and a retried worker finalisation after that
    await endCompletion(workerSteps(), { ...end, finishReason: "STOP", text: "abc", outputTokens: 3 });

    const r = await row(c.id);
    expect(r).toMatchObject({ status: "COMPLETED", finishReason: "STOP", text: "abc", outputTokens: 3 });
    const done = (await events(t.tenantId, c.id)).filter((e) => e.done);
    expect(done).toEqual([{ version: 1, index: 3, tokenId: -1, text: "", done: true, finishReason: "STOP" }]);
    // only `other` still holds a slot and its reservation (8 tokens × FAST cost weight 1)
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: other.id }, "CANCELLED");
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });

  test("a cancelled job whose dead worker had streamed ends with the stream: row, usage and settle count it, once", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    const other = await create(t);
    // a worker ran it, streamed 5 tokens and died; the job went back to its queue
    await new CompletionRowStore(env.db).markRunning(c.id, new Date());
    await streams.append(t.tenantId, c.id, tokens(5));
    // the cancel removes the waiting job and ends it; another ending runs at the same time
    await Promise.all([
      cancelCompletion(res, principalOf(t), await row(c.id)),
      endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED"),
    ]);
    await endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED");

    expect(await row(c.id)).toMatchObject({ status: "CANCELLED", text: "abcde", outputTokens: 5 });
    const done = (await events(t.tenantId, c.id)).filter((e) => e.done);
    expect(done).toEqual([{ version: 1, index: 5, tokenId: -1, text: "", done: true, finishReason: "CANCELLED" }]);
    const usage = await env.db.usageEvent.findMany({ where: { completionId: c.id }, orderBy: { meter: "asc" } });
    expect(usage.map((u) => [u.meter, Number(u.quantity)])).toEqual([
      ["INPUT_TOKENS", 5],
      ["OUTPUT_TOKENS", 5],
      ["TIERSET_ACTIVATIONS", 1],
    ]);
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: other.id }, "CANCELLED");
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });

  test("the API ends it first (cancelled while queued), then a worker finishes: the cancel stands", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    const other = await create(t);
    await endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED");
    await endCompletion(workerSteps(), {
      tenantId: t.tenantId,
      completionId: c.id,
      finishReason: "STOP",
      text: "late",
      outputTokens: 2,
      finishedAt: new Date(),
    });
    expect(await row(c.id)).toMatchObject({
      status: "CANCELLED",
      finishReason: "CANCELLED",
      text: "",
      outputTokens: 0,
    });
    expect(await events(t.tenantId, c.id)).toEqual([
      { version: 1, index: 0, tokenId: -1, text: "", done: true, finishReason: "CANCELLED" },
    ]);
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: other.id }, "CANCELLED");
  });

  test("both at once: one final row, one done event, the slot released once", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    const other = await create(t);
    await Promise.all([
      endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "ERROR", "could not be queued"),
      endCompletion(workerSteps(), {
        tenantId: t.tenantId,
        completionId: c.id,
        finishReason: "LENGTH",
        text: "",
        outputTokens: 0,
        finishedAt: new Date(),
      }),
    ]);
    const r = await row(c.id);
    expect(["FAILED", "COMPLETED"]).toContain(r.status);
    expect((await events(t.tenantId, c.id)).filter((e) => e.done)).toHaveLength(1);
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: other.id }, "CANCELLED");
  });
});

describe("createCompletion", () => {
  test("admits, writes the QUEUED row and queues the job", async () => {
    const t = await createTenant(env.db);
    const c = await create(t, { seed: "42" });
    expect(c).toMatchObject({ status: "QUEUED", mode: "FAST", tierSet: ["tiny.t0"], seed: "42", degraded: false });
    const spec = await new CompletionRowStore(env.db).load(c.id);
    expect(spec).toMatchObject({ tenantId: t.tenantId, modelName: "tiny", status: "QUEUED", prompt: "hello" });
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    expect(await cancelCompletion(res, principalOf(t), await row(c.id))).toMatchObject({
      status: "CANCELLED",
      finishReason: "CANCELLED",
    });
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });

  test("expected refusals are values, not exceptions", async () => {
    const t = await createTenant(env.db);
    const code = async (p: Principal, i: CompletionInput) => {
      const r = await createCompletion(res, p, i);
      return r.ok ? "OK" : r.error.code;
    };
    expect(await code(principalOf(t), input({ maxTokens: 0 }))).toBe("BAD_USER_INPUT");
    expect(await code(principalOf(t), input({ maxTokens: 200 }))).toBe("BAD_USER_INPUT"); // over the context of 128
    expect(await code(principalOf(t), input({ model: "nope" }))).toBe("NOT_FOUND");
    expect(await code({ role: "ADMIN", apiKeyId: "key_x", tenantId: null }, input())).toBe("FORBIDDEN");
    await env.db.quota.update({ where: { tenantId: t.tenantId }, data: { requestsPerMinute: 1 } });
    expect(await code(principalOf(t), input())).toBe("OK");
    const refused = await createCompletion(res, principalOf(t), input());
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error).toMatchObject({ code: "RATE_LIMITED", reason: "requestsPerMinute" });
    expect(audited.some((a) => a.tenantId === t.tenantId && a.action === "completion.admit")).toBe(true);
  });

  test("a failed enqueue ends the completion FAILED and releases the reservation", async () => {
    const t = await createTenant(env.db);
    const broken = {
      ...res,
      scheduler: {
        enqueue: async () => {
          throw new Error("queue is gone");
        },
        cancel: scheduler.cancel.bind(scheduler),
      },
    };
    const r = await createCompletion(broken, principalOf(t), input());
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ code: "UNAVAILABLE", retryAfterMs: 1000 });
    const rows = await env.db.completion.findMany({ where: { tenantId: t.tenantId } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: "FAILED", finishReason: "ERROR", error: "could not be queued" });
    expect((await events(t.tenantId, rows[0].id)).map((e) => e.finishReason)).toEqual(["ERROR"]);
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });

  test("a failed enqueue releases its idempotency key: the retry with that key is a new, queued completion", async () => {
    const t = await createTenant(env.db);
    const broken = {
      ...res,
      scheduler: {
        enqueue: async () => {
          throw new Error("queue is gone");
        },
        cancel: scheduler.cancel.bind(scheduler),
      },
    };
    const failed = await createCompletion(broken, principalOf(t), input({ idempotencyKey: "retry-me" }));
    expect(failed.ok).toBe(false);
    expect(await env.db.completionIdempotencyKey.count({ where: { tenantId: t.tenantId } })).toBe(0);
    const retried = await create(t, { idempotencyKey: "retry-me" });
    expect(retried.status).toBe("QUEUED");
    expect(await create(t, { idempotencyKey: "retry-me" })).toMatchObject({ id: retried.id });
    const all = await env.db.completion.findMany({ where: { tenantId: t.tenantId }, orderBy: { id: "asc" } });
    expect(all.map((r) => r.status)).toEqual(["FAILED", "QUEUED"]);
    expect(await admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    await endUnheld(res, { tenantId: t.tenantId, completionId: retried.id }, "CANCELLED");
  });
});

describe("queries", () => {
  test("withLiveText shows the stream's text while running; another tenant's completion is hidden", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    await streams.append(t.tenantId, c.id, tokens(2));
    expect(await withLiveText(streams, await row(c.id))).toMatchObject({ text: "ab", outputTokens: 2 });

    const stranger = await createTenant(env.db);
    const hidden = await findCompletion(env.db, c.id, stranger.tenantId);
    expect(hidden.ok).toBe(false);
    if (!hidden.ok)
      expect(hidden.error).toMatchObject({ code: "NOT_FOUND", context: { hidden: { ownerTenantId: t.tenantId } } });
    expect((await findCompletion(env.db, c.id, null)).ok).toBe(true);
    await endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED");
  });

  test("findCompletion (raw SQL) gives the row the ORM reads, live or final; a missing id is NOT_FOUND with no owner", async () => {
    const t = await createTenant(env.db);
    const c = await create(t, { prompt: "héllo ✓", temperature: 0.7 });
    const orm = () => env.db.completion.findUniqueOrThrow({ where: { id: c.id } });
    const mine = async () => {
      const r = await findCompletion(env.db, c.id, t.tenantId);
      if (!r.ok) throw r.error;
      return r.value;
    };
    expect(await mine()).toEqual(await orm());
    await streams.append(t.tenantId, c.id, tokens(2));
    await endUnheld(res, { tenantId: t.tenantId, completionId: c.id }, "CANCELLED");
    expect(await orm()).toMatchObject({ status: "CANCELLED", text: "ab", outputTokens: 2 });
    expect(await mine()).toEqual(await orm());
    const missing = await findCompletion(env.db, "cmp_00000000000000000000000000", t.tenantId);
    expect(missing.ok).toBe(false);
    if (!missing.ok) {
      expect(missing.error).toMatchObject({ code: "NOT_FOUND" });
      expect(missing.error.context?.hidden).toBeUndefined();
    }
  });

  test("tokenEvents replays to the done event; a finished completion without a stream is STREAM_EXPIRED", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    await streams.append(t.tenantId, c.id, tokens(2));
    await endCompletion(workerSteps(), {
      tenantId: t.tenantId,
      completionId: c.id,
      finishReason: "LENGTH",
      text: "ab",
      outputTokens: 2,
      finishedAt: new Date(),
    });
    const seen: Array<[number, boolean]> = [];
    for await (const e of value(await tokenEvents(streams, await row(c.id), 1))) seen.push([e.index, e.done]);
    expect(seen).toEqual([
      [1, false],
      [2, true],
    ]);
    expect((await tokenEvents(streams, await row(c.id), -1)).ok).toBe(false);
    await env.redis.del(env.keys.completionStream(t.tenantId, c.id));
    const expired = await tokenEvents(streams, await row(c.id), 0);
    expect(expired.ok ? "OK" : expired.error.code).toBe("STREAM_EXPIRED");
  });
});

describe("the row writes of a job's start and end (raw SQL)", () => {
  test("markRunning and finaliseRow store exactly what the ORM reads back; unset text and outputTokens are kept; only an active row ends, once", async () => {
    const t = await createTenant(env.db);
    const c = await create(t);
    const other = await create(t);
    const store = new CompletionRowStore(env.db);
    const startedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    await store.markRunning(c.id, startedAt);
    await store.markRunning(c.id, new Date()); // no longer QUEUED: kept
    expect(await env.db.completion.findUniqueOrThrow({ where: { id: c.id } })).toMatchObject({
      status: "RUNNING",
      startedAt,
    });
    await env.db.completion.update({ where: { id: c.id }, data: { text: "so far", outputTokens: 2 } });
    const finishedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 9, 12));
    const f = { completionId: c.id, status: "FAILED" as const, finishReason: "ERROR" as const, finishedAt };
    await store.finalise({ ...f, error: 'it\'s "broken"' });
    expect(await env.db.completion.findUniqueOrThrow({ where: { id: c.id } })).toMatchObject({
      status: "FAILED",
      finishReason: "ERROR",
      text: "so far",
      outputTokens: 2,
      error: 'it\'s "broken"',
      startedAt,
      finishedAt,
    });
    await store.finalise({ ...f, status: "COMPLETED", finishReason: "STOP", text: "x", outputTokens: 9 }); // final: no-op
    expect(await env.db.completion.findUniqueOrThrow({ where: { id: c.id } })).toMatchObject({
      status: "FAILED",
      text: "so far",
      outputTokens: 2,
    });
    // the other completion of the tenant is untouched, then ends with its own values
    expect(await env.db.completion.findUniqueOrThrow({ where: { id: other.id } })).toMatchObject({
      status: "QUEUED",
      startedAt: null,
      finishedAt: null,
    });
    await store.finalise({
      ...f,
      completionId: other.id,
      status: "COMPLETED",
      finishReason: "STOP",
      text: "",
      outputTokens: 0,
    });
    expect(await env.db.completion.findUniqueOrThrow({ where: { id: other.id } })).toMatchObject({
      status: "COMPLETED",
      finishReason: "STOP",
      text: "",
      outputTokens: 0,
      error: null,
      finishedAt,
    });
  });
});

describe("CompletionRowStore.ungrantedTiers (the worker's start check)", () => {
  it("names the tiers without a grant, follows a revoke at once, and never counts another tenant's private tier", async () => {
    const store = new CompletionRowStore(env.db);
    const a = await createTenant(env.db, { tierIds: ["tiny.t0", "tiny.t1", "tiny.t3"] });
    const b = await createTenant(env.db, { tierIds: ["tiny.t0"] });
    expect(await store.ungrantedTiers(a.tenantId, ["tiny.t0", "tiny.t1", "tiny.t3"])).toEqual([]);
    expect(await store.ungrantedTiers(b.tenantId, ["tiny.t0", "tiny.t3"])).toEqual(["tiny.t3"]);
    await env.db.tierGrant.delete({ where: { tenantId_tierId: { tenantId: a.tenantId, tierId: "tiny.t3" } } });
    expect(await store.ungrantedTiers(a.tenantId, ["tiny.t0", "tiny.t3"])).toEqual(["tiny.t3"]);
    expect(await store.ungrantedTiers(a.tenantId, [])).toEqual([]);
    // a grant row on b's private tier, which setTierGrant refuses to write, grants the other tenant nothing
    const tier = await env.db.tier.findUniqueOrThrow({ where: { id: "tiny.t0" } });
    const { id: _id, createdAt: _at, ...shape } = tier;
    const priv = await env.db.tier.create({ data: { ...shape, id: `tier_${b.tenantId}`, ownerTenantId: b.tenantId } });
    await env.db.tierGrant.createMany({ data: [a, b].map((t) => ({ tenantId: t.tenantId, tierId: priv.id })) });
    expect(await store.ungrantedTiers(a.tenantId, [priv.id])).toEqual([priv.id]);
    expect(await store.ungrantedTiers(b.tenantId, [priv.id])).toEqual([]);
  });
});

describe("the row createCompletion writes (raw SQL: completion-insert.ts)", () => {
  test.each([
    ["without", undefined],
    ["with", "key-raw-insert"],
  ])("%s an idempotency key, reads back through the ORM as written; createdAt is now, in UTC", async (_, key) => {
    const t = await createTenant(env.db);
    const before = Date.now();
    const c = await create(t, {
      prompt: "héllo ✓",
      seed: "18446744073709551615",
      temperature: 0.7,
      idempotencyKey: key,
    });
    const after = Date.now();
    const r = await row(c.id);
    expect(r).toMatchObject({
      id: c.id,
      tenantId: t.tenantId,
      apiKeyId: t.apiKeyId,
      status: "QUEUED",
      mode: "FAST",
      degraded: false,
      seed: "18446744073709551615",
      prompt: "héllo ✓",
      promptTokens: Buffer.byteLength("héllo ✓", "utf8"),
      maxTokens: 8,
      temperature: 0.7,
      outputTokens: 0,
      text: "",
      finishReason: null,
      error: null,
      startedAt: null,
      finishedAt: null,
    });
    expect(r.tierSet.length).toBeGreaterThan(0);
    expect(r.costWeight).toBeGreaterThan(0);
    // a session time zone other than UTC would shift it by hours
    expect(r.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(r.createdAt.getTime()).toBeLessThanOrEqual(after + 1);
    // what createCompletion answered is the row as stored
    expect(c).toMatchObject({ id: r.id, seed: r.seed, tierSet: r.tierSet, createdAt: r.createdAt });
  });
});
