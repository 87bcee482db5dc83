/**
 * The audit writer against real PostgreSQL and Redis, fed events no current producer
 * would queue (raw NUL bytes, lone surrogates, a megabyte of text, an event PostgreSQL
 * refuses, entries that do not parse): one bad event never blocks the log, what can be
 * stored is stored, the rest waits in the dead-letter stream, the chain stays valid
 * (issue 8, finding 1).
 */
import { Registry } from "prom-client";
import { newId } from "@lite/core";
import { createDb } from "@lite/db";
import {
  AUDIT_FIELD_MAX_CHARS,
  AuditQueue,
  AuditWriter,
  TRUNCATION_MARKER,
  auditStreamKey,
  readAuditDeadLetters,
  verifyAuditChain,
  type AuditEvent,
} from "@lite/auth";
import { createTestEnv, type TestEnv } from "@lite/testing";

let env: TestEnv;

beforeAll(async () => {
  env = await createTestEnv();
});

afterAll(async () => {
  await env?.close();
});

function event(fields: Partial<AuditEvent>): AuditEvent {
  const at = new Date();
  return {
    version: 1,
    eventId: newId("audit", at.getTime()),
    at: at.toISOString(),
    tenantId: null,
    actor: "test",
    action: "poison",
    resource: "r",
    decision: "DENY",
    reason: null,
    ...fields,
  };
}

/** Queues an event as it is, the way a producer that does not sanitise would. */
async function enqueueRaw(e: AuditEvent | string): Promise<string> {
  const raw = typeof e === "string" ? e : JSON.stringify(e);
  return (await env.redis.xadd(auditStreamKey(env.keys), "*", "e", raw)) as string;
}

async function waitFor(fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await fn()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

async function metric(registry: Registry, name: string, labels = ""): Promise<number | undefined> {
  const text = await registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

const queued = () => env.redis.xlen(auditStreamKey(env.keys));

describe("audit writer: a poison event never blocks the log", () => {
  it.each([
    ["a NUL byte", "x\u0000y", "x\\u0000y"],
    ["a lone high surrogate", "x\ud800y", "x\\ud800y"],
    ["a lone low surrogate", "x\udc00y", "x\\udc00y"],
  ])("stores an event holding %s escaped, and the next one within seconds", async (_what, raw, stored) => {
    const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys, retryDelayMs: 50 });
    writer.start();
    try {
      const poison = event({ resource: `tenant:${raw}`, reason: `NOT_OWNER ${raw}`, tenantId: `ten_${raw}` });
      await enqueueRaw(poison);
      const action = `after-${newId("audit")}`;
      await new AuditQueue({ redis: env.redis, keys: env.keys }).record({
        actor: "test",
        action,
        resource: "r",
        decision: "OK",
      });
      await waitFor(async () => (await env.db.auditLog.count({ where: { action } })) === 1, 5000);
      const row = await env.db.auditLog.findUniqueOrThrow({ where: { eventId: poison.eventId } });
      expect(row).toMatchObject({
        resource: `tenant:${stored}`,
        reason: `NOT_OWNER ${stored}`,
        tenantId: `ten_${stored}`,
      });
      expect(await queued()).toBe(0);
      expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
    } finally {
      await writer.stop();
    }
  });

  it("truncates an over-long field to its documented maximum, with a marker and the original length", async () => {
    const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys });
    const long = event({ resource: `completion:${"a".repeat(150_000)}`, reason: "😀".repeat(50_000) });
    await enqueueRaw(long);
    await writer.flush();
    const row = await env.db.auditLog.findUniqueOrThrow({ where: { eventId: long.eventId } });
    expect(row.resource.length).toBeLessThanOrEqual(AUDIT_FIELD_MAX_CHARS.resource);
    expect(row.resource).toMatch(new RegExp(`^completion:a+${TRUNCATION_MARKER.replace("[", "\\[")}150011\\]$`));
    expect(row.reason!.length).toBeLessThanOrEqual(AUDIT_FIELD_MAX_CHARS.reason);
    expect(row.reason).toMatch(/^(😀)+…\[truncated 100000\]$/u); // no surrogate pair cut in half
    expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
  });

  it("quarantines an event PostgreSQL still refuses, counts it, keeps queue order for the rest", async () => {
    const registry = new Registry();
    const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys, registry, retryDelayMs: 50 });
    // A refusal no sanitising can fix, made by PostgreSQL itself.
    await env.db.$executeRawUnsafe(
      `ALTER TABLE "AuditLog" ADD CONSTRAINT test_refuse CHECK (resource <> 'refused-by-check') NOT VALID`,
    );
    writer.start();
    try {
      const before = event({ action: "order", resource: "before" });
      const refused = event({ action: "order", resource: "refused-by-check" });
      const after = event({ action: "order", resource: "after" });
      await enqueueRaw(before);
      const refusedEntry = await enqueueRaw(refused);
      await enqueueRaw(after);
      await waitFor(async () => (await env.db.auditLog.count({ where: { action: "order" } })) === 2, 5000);
      const rows = await env.db.auditLog.findMany({ where: { action: "order" }, orderBy: { seq: "asc" } });
      expect(rows.map((r) => r.resource)).toEqual(["before", "after"]);
      expect(rows[1].seq).toBe(rows[0].seq + 1n);

      const dead = await readAuditDeadLetters(env.redis, env.keys);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ entryId: refusedEntry, reason: "rejected", payload: JSON.stringify(refused) });
      expect(dead[0].error).toMatch(/test_refuse|check constraint/i);
      expect(await queued()).toBe(0);
      expect(await metric(registry, "lite_audit_quarantined_total", '{reason="rejected"}')).toBe(1);
      expect(await metric(registry, "lite_audit_dead_letter_length")).toBe(1);
      expect(await metric(registry, "lite_audit_queue_length")).toBe(0);
      expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
    } finally {
      await writer.stop();
      await env.db.$executeRawUnsafe(`ALTER TABLE "AuditLog" DROP CONSTRAINT test_refuse`);
    }
  });

  it("quarantines entries that do not parse instead of dropping them", async () => {
    const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys });
    const deadBefore = (await readAuditDeadLetters(env.redis, env.keys)).length;
    const notJson = await enqueueRaw("{not json");
    const noPayload = (await env.redis.xadd(auditStreamKey(env.keys), "*", "x", "y")) as string;
    await writer.flush();
    const dead = (await readAuditDeadLetters(env.redis, env.keys)).slice(deadBefore);
    expect(dead.map((d) => [d.entryId, d.reason, d.payload])).toEqual([
      [notJson, "malformed", "{not json"],
      [noPayload, "malformed", null],
    ]);
    expect(await queued()).toBe(0);
  });

  it("keeps events queued, unquarantined, while PostgreSQL is unreachable", async () => {
    const unreachable = createDb({ url: "postgresql://postgres@127.0.0.1:1/none", poolSize: 1 });
    const down = new AuditWriter({ db: unreachable, redis: env.redis, keys: env.keys });
    const deadBefore = (await readAuditDeadLetters(env.redis, env.keys)).length;
    try {
      const e = event({ action: "outage" });
      await enqueueRaw(e);
      await expect(down.flush()).rejects.toThrow();
      expect(await queued()).toBe(1);
      expect(await readAuditDeadLetters(env.redis, env.keys)).toHaveLength(deadBefore);
      await new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys }).flush();
      expect(await env.db.auditLog.count({ where: { eventId: e.eventId } })).toBe(1);
    } finally {
      await unreachable.$disconnect();
    }
  });

  it("reports the queue's length and lag on /metrics, for an alert when the writer falls behind", async () => {
    const registry = new Registry();
    const clock = { nowMs: () => Date.now() + 7000 };
    new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys, registry, clock }); // not started
    await enqueueRaw(event({ action: "lag" }));
    await enqueueRaw(event({ action: "lag" }));
    expect(await metric(registry, "lite_audit_queue_length")).toBe(2);
    expect(await metric(registry, "lite_audit_queue_lag_seconds")).toBeGreaterThanOrEqual(6.5);
    await new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys }).flush();
    expect(await metric(registry, "lite_audit_queue_lag_seconds")).toBe(0);
    expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
  });

  it("appends a steady trickle of events in batches (one transaction per linger), not one transaction per event", async () => {
    const registry = new Registry();
    const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys, registry });
    writer.start();
    try {
      const queue = new AuditQueue({ redis: env.redis, keys: env.keys });
      const before = (await metric(registry, "lite_audit_append_batches_total")) ?? 0;
      // 30 events, one every 20 ms: a request rate the API sees under load
      for (let i = 0; i < 30; i++) {
        await queue.record({ actor: "test", action: "trickle", resource: `r${i}`, decision: "ALLOW" });
        await new Promise((r) => setTimeout(r, 20));
      }
      await waitFor(async () => (await env.db.auditLog.count({ where: { action: "trickle" } })) === 30, 10000);
      const batches = ((await metric(registry, "lite_audit_append_batches_total")) ?? 0) - before;
      expect(batches).toBeGreaterThanOrEqual(1);
      expect(batches).toBeLessThanOrEqual(8);
      expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
    } finally {
      await writer.stop();
    }
  });
});
