/**
 * Issue 9, finding 5: createCompletion with an idempotency key (the `idempotencyKey` input
 * field or the HTTP `Idempotency-Key` header). A retry within the TTL gets the same
 * completion, admitted, queued and billed once; concurrent retries make one completion; the
 * same key with another request is a CONFLICT; keys are per tenant and expire.
 */
import { CREATE_COMPLETION, waitFor, type StackTenant } from "@lite/testing";
import { JOB_CATALOG } from "@lite/scheduler";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string; tenantId: string; status: string; seed: string } };
interface Answer {
  status: number;
  data?: Created | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

let stack: TestStack;
beforeAll(async () => {
  // No worker until the last test: admitted completions stay admitted and queued, so
  // reservations and jobs can be counted.
  stack = await startE2eStack({ workers: 0 });
}, 60000);
afterAll(async () => {
  await stack?.close();
});

const input = (over: Record<string, unknown> = {}) => ({
  prompt: "Hello",
  maxTokens: 8,
  mode: "FAST",
  seed: "1",
  ...over,
});

/** createCompletion over HTTP, with extra headers (GqlHttp sends none). */
async function create(
  t: StackTenant,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
  url = stack.api.url,
): Promise<Answer> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${t.secret}`, ...headers },
    body: JSON.stringify({ query: CREATE_COMPLETION, variables }),
  });
  return { status: res.status, ...((await res.json()) as Omit<Answer, "status">) };
}

function idOf(a: Answer): string {
  if (!a.data?.createCompletion) throw new Error(`expected a completion, got ${a.status} ${JSON.stringify(a.errors)}`);
  return a.data.createCompletion.id;
}

const rows = (tenantId: string) => stack.env.db.completion.findMany({ where: { tenantId } });

/** The tenant's BullMQ job hashes (jobId = completion id). */
async function jobIds(tenantId: string): Promise<string[]> {
  const pattern = `${stack.env.keys.tenantQueuePrefix(tenantId)}:${JOB_CATALOG.completion.queueName}:cmp_*`;
  const keys = await stack.env.redis.keys(pattern);
  return keys.map((k) => k.slice(k.lastIndexOf(":") + 1)).filter((id) => /^cmp_[A-Za-z0-9]+$/.test(id));
}

async function expectRefused(a: Answer, field: string, reason?: string): Promise<void> {
  expect(a.status).toBe(400);
  expect(a.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
  if (reason) expect(a.errors?.[0]?.extensions?.reason).toBe(reason);
}

/** Tenants whose completions the last test runs through a worker and checks were billed once. */
const billed: StackTenant[] = [];

describe("createCompletion with an idempotency key", () => {
  it("a retry with the same key (argument or header) returns the same completion: one row, one job, one reservation", async () => {
    const t = await stack.tenant();
    billed.push(t);
    const first = await create(t, { input: input({ idempotencyKey: "order-1" }) });
    const id = idOf(first);
    const again = await create(t, { input: input({ idempotencyKey: "order-1" }) });
    const byHeader = await create(t, { input: input() }, { "Idempotency-Key": "order-1" });
    const both = await create(t, { input: input({ idempotencyKey: "order-1" }) }, { "Idempotency-Key": "order-1" });
    // Defaults spelt out are the same request.
    const spelt = await create(t, { input: input({ idempotencyKey: "order-1", temperature: 0, model: null }) });
    for (const a of [again, byHeader, both, spelt]) expect(idOf(a)).toBe(id);
    expect(again.data!.createCompletion).toEqual(first.data!.createCompletion);
    expect(await rows(t.tenantId)).toHaveLength(1);
    expect(await jobIds(t.tenantId)).toEqual([id]);
    expect(await stack.admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
    // Without a key, the same request is a new completion.
    expect(idOf(await create(t, { input: input() }))).not.toBe(id);
  });

  it("five concurrent identical requests make one completion: five identical ids, the losers' reservations released", async () => {
    const t = await stack.tenant();
    billed.push(t);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => create(t, { input: input({ seed: "race" }) }, { "Idempotency-Key": "race-1" })),
    );
    const ids = answers.map(idOf);
    expect(new Set(ids).size).toBe(1);
    const all = await rows(t.tenantId);
    expect(all.map((r) => r.id)).toEqual([ids[0]]);
    expect(await jobIds(t.tenantId)).toEqual([ids[0]]);
    expect(await stack.admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
  });

  it("the same key with another request is BAD_USER_INPUT (reason CONFLICT) naming idempotencyKey; nothing admitted", async () => {
    const t = await stack.tenant();
    const id = idOf(await create(t, { input: input({ idempotencyKey: "k" }) }));
    for (const other of [{ prompt: "Bye" }, { maxTokens: 9 }, { seed: "2" }, { mode: "DEEP" }, { temperature: 0.5 }]) {
      const a = await create(t, { input: input({ idempotencyKey: "k", ...other }) });
      await expectRefused(a, "input.idempotencyKey", "CONFLICT");
      expect(a.errors?.[0]?.message).toContain(id);
    }
    await expectRefused(
      await create(t, { input: input({ prompt: "Bye" }) }, { "Idempotency-Key": "k" }),
      "input.idempotencyKey",
      "CONFLICT",
    );
    expect(await rows(t.tenantId)).toHaveLength(1);
    expect(await stack.admission.usage(t.tenantId)).toMatchObject({ concurrent: 1, outstandingTokens: 8 });
  });

  it("keys are per tenant: tenant B with A's key gets its own completion, never A's", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const aId = idOf(await create(a, { input: input({ idempotencyKey: "shared" }) }));
    const bAnswer = await create(b, { input: input({ idempotencyKey: "shared" }) });
    expect(idOf(bAnswer)).not.toBe(aId);
    expect(bAnswer.data!.createCompletion.tenantId).toBe(b.tenantId);
    // Another request under the same key is B's own business, not a conflict with A's.
    const bOther = await create(b, { input: input({ prompt: "other" }) }, { "Idempotency-Key": "shared2" });
    const aOther = await create(a, { input: input({ prompt: "different" }) }, { "Idempotency-Key": "shared2" });
    expect(idOf(aOther)).not.toBe(idOf(bOther));
    // Each retry gets its own tenant's completion.
    expect(idOf(await create(b, { input: input({ idempotencyKey: "shared" }) }))).toBe(idOf(bAnswer));
    expect(idOf(await create(a, { input: input({ idempotencyKey: "shared" }) }))).toBe(aId);
    expect((await rows(a.tenantId)).map((r) => r.id).sort()).toEqual([aId, idOf(aOther)].sort());
    expect((await rows(b.tenantId)).map((r) => r.id).sort()).toEqual([idOf(bAnswer), idOf(bOther)].sort());
  });

  it("a header that differs from the argument is BAD_USER_INPUT naming idempotencyKey; nothing is created", async () => {
    const t = await stack.tenant();
    const a = await create(t, { input: input({ idempotencyKey: "one" }) }, { "Idempotency-Key": "two" });
    await expectRefused(a, "input.idempotencyKey");
    expect(await rows(t.tenantId)).toHaveLength(0);
  });

  it("a key is 1 to 128 printable ASCII characters: 128 accepted, 129 refused, argument and header alike", async () => {
    const t = await stack.tenant();
    idOf(await create(t, { input: input({ idempotencyKey: "k".repeat(128) }) }));
    idOf(await create(t, { input: input({ seed: "h" }) }, { "Idempotency-Key": "h".repeat(128) }));
    idOf(await create(t, { input: input({ seed: "s" }) }, { "Idempotency-Key": "a b~!" }));
    for (const bad of ["k".repeat(129), "", "café", "tab\there", "nul\u0000"]) {
      await expectRefused(await create(t, { input: input({ idempotencyKey: bad }) }), "input.idempotencyKey");
    }
    for (const bad of ["h".repeat(129), ""]) {
      await expectRefused(await create(t, { input: input() }, { "Idempotency-Key": bad }), "Idempotency-Key");
    }
    expect(await rows(t.tenantId)).toHaveLength(3);
  });

  it("an expired key no longer matches: a new completion, and the key now holds it (IDEMPOTENCY_TTL_HOURS)", async () => {
    const t = await stack.tenant();
    const old = idOf(await create(t, { input: input({ idempotencyKey: "late" }) }));
    const backdate = (hours: number) =>
      stack.env.db.completionIdempotencyKey.update({
        where: { tenantId_key: { tenantId: t.tenantId, key: "late" } },
        data: { createdAt: new Date(Date.now() - hours * 3600 * 1000) },
      });
    // 2 h old: still held under the default 24 h, expired for an API with IDEMPOTENCY_TTL_HOURS=1.
    await backdate(2);
    expect(idOf(await create(t, { input: input({ idempotencyKey: "late" }) }))).toBe(old);
    const shortTtl = await stack.startApi({ IDEMPOTENCY_TTL_HOURS: "1" });
    const renewed = idOf(await create(t, { input: input({ idempotencyKey: "late" }) }, {}, shortTtl.url));
    expect(renewed).not.toBe(old);
    expect(idOf(await create(t, { input: input({ idempotencyKey: "late" }) }))).toBe(renewed);
    // 25 h old under the default TTL: expired too, and a different request is no conflict.
    await backdate(25);
    const third = idOf(await create(t, { input: input({ idempotencyKey: "late", prompt: "new" }) }));
    expect([old, renewed]).not.toContain(third);
    expect(await rows(t.tenantId)).toHaveLength(3);
  });

  it("with a worker: each completion runs and is billed once, the counters return to zero, and a retry after it finished replays it", async () => {
    await stack.spawnWorker({ batchSize: 8 });
    for (const t of billed) {
      const all = await rows(t.tenantId);
      await waitFor(
        "completions finished",
        async () =>
          (await stack.env.db.completion.count({ where: { tenantId: t.tenantId, status: "COMPLETED" } })) ===
          all.length,
        { timeoutMs: 30000 },
      );
      await waitFor("counters released", async () => {
        const u = await stack.admission.usage(t.tenantId);
        return u.concurrent === 0 && u.outstandingTokens === 0;
      });
      const outputs = await stack.env.db.usageEvent.findMany({
        where: { tenantId: t.tenantId, meter: "OUTPUT_TOKENS" },
      });
      expect(outputs.map((u) => u.completionId).sort()).toEqual(all.map((r) => r.id).sort());
    }
    const t = billed[1];
    const [done] = await rows(t.tenantId);
    const replay = await create(t, { input: input({ seed: "race" }) }, { "Idempotency-Key": "race-1" });
    expect(replay.data!.createCompletion).toMatchObject({ id: done.id, status: "COMPLETED" });
    expect(await rows(t.tenantId)).toHaveLength(1);
    expect(await stack.admission.usage(t.tenantId)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  }, 60000);
});
