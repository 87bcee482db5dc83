import {
  CANCEL_COMPLETION,
  collectTokens,
  COMPLETION_QUERY,
  CREATE_COMPLETION,
  type TokenEvent,
  waitFor,
  wsClient,
} from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string; status: string; mode: string; tierSet: string[]; degraded: boolean } };
type Row = {
  completion: { id: string; status: string; text: string; outputTokens: number; finishReason: string | null };
};

const input = (over: Record<string, unknown> = {}) => ({
  prompt: "Hello",
  maxTokens: 8,
  mode: "FAST",
  seed: "1",
  temperature: 0.8,
  ...over,
});

describe("completions through the API with a real worker", () => {
  let stack: TestStack;
  beforeAll(async () => {
    // No worker at first: the concurrency test needs admitted completions to stay admitted.
    stack = await startE2eStack({ workers: 0, workerEnv: { WORKER_STEP_DELAY_MS: "10" } });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  it("admits exactly maxConcurrentRequests of 50 concurrent requests; the rest get 429 with Retry-After", async () => {
    const t = await stack.tenant({ quota: { maxConcurrentRequests: 10 } });
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.http.request<Created>(CREATE_COMPLETION, { input: input({ seed: String(i) }) }),
      ),
    );
    const admitted = answers.filter((a) => a.data?.createCompletion);
    const refused = answers.filter((a) => !a.data?.createCompletion);
    expect(admitted).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.errors?.[0]?.extensions?.code).toBe("QUOTA_EXCEEDED");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect((await stack.admission.usage(t.tenantId)).concurrent).toBe(10);
    // A worker arrives: everything admitted runs, and the counters return to zero.
    await stack.spawnWorker({ batchSize: 8 });
    await waitFor(
      "all admitted completions to finish",
      async () =>
        (await stack.env.db.completion.count({ where: { tenantId: t.tenantId, status: "COMPLETED" } })) === 10,
      { timeoutMs: 30000 },
    );
    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0;
    });
  }, 60000);

  it("REJECT policy: over requestsPerMinute is RATE_LIMITED, HTTP 429 with Retry-After", async () => {
    const t = await stack.tenant({ quota: { requestsPerMinute: 2 } });
    const ok1 = await t.http.request<Created>(CREATE_COMPLETION, { input: input() });
    const ok2 = await t.http.request<Created>(CREATE_COMPLETION, { input: input() });
    expect(ok1.errors).toBeUndefined();
    expect(ok2.errors).toBeUndefined();
    const refused = await t.http.request<Created>(CREATE_COMPLETION, { input: input() });
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(Number(refused.errors?.[0]?.extensions?.retryAfterMs)).toBeGreaterThan(0);
  });

  it("over requestsPerMinute, requests inside the refusal's window are refused before their TierSet is resolved or anything reserved; another tenant is not; a quota change ends the window", async () => {
    const t = await stack.tenant({ quota: { requestsPerMinute: 2 } });
    const other = await stack.tenant({ quota: { requestsPerMinute: 2 } });
    for (let i = 0; i < 2; i++)
      expect((await t.http.request<Created>(CREATE_COMPLETION, { input: input() })).errors).toBeUndefined();
    const first = await t.http.request<Created>(CREATE_COMPLETION, { input: input() }); // refused by admission
    const inWindow = [
      await t.http.request<Created>(CREATE_COMPLETION, { input: input() }),
      await t.http.request<Created>(CREATE_COMPLETION, { input: input() }),
    ];
    const firstRetry = Number(first.errors?.[0]?.extensions?.retryAfterMs);
    for (const r of [first, ...inWindow]) {
      expect(r.status).toBe(429);
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", reason: "requestsPerMinute" });
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    for (const r of inWindow) {
      const ms = Number(r.errors?.[0]?.extensions?.retryAfterMs);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(firstRetry);
    }
    // Refused in the window: audited DENY like the first, but no TierSet was resolved (no
    // tier.activate audited for them) and no row written.
    await stack.api.services.auditWriter.flush();
    const audited = async (action: string, decision: string) =>
      stack.env.db.auditLog.count({ where: { tenantId: t.tenantId, action, decision } });
    expect(await audited("completion.admit", "DENY")).toBe(3);
    const activations = await audited("tier.activate", "ALLOW");
    expect(activations).toBe(
      3 * (await stack.env.db.completion.findFirstOrThrow({ where: { tenantId: t.tenantId } })).tierSet.length,
    );
    expect(await stack.env.db.completion.count({ where: { tenantId: t.tenantId } })).toBe(2);
    // another tenant's requests are its own: admitted
    expect((await other.http.request<Created>(CREATE_COMPLETION, { input: input() })).errors).toBeUndefined();
    // a quota change forgets the window: once the bucket (now 600/min) holds a request, admitted
    await stack.admin.ok(`mutation($t: ID!) { setQuota(tenantId: $t, input: { requestsPerMinute: 600 }) { id } }`, {
      t: t.tenantId,
    });
    await waitFor(
      "a request admitted after the quota change",
      async () => (await t.http.request<Created>(CREATE_COMPLETION, { input: input() })).errors === undefined,
      { timeoutMs: 5000, everyMs: 100 },
    );
  });

  it("DEGRADE policy: a request whose TierSet does not fit runs on a smaller TierSet, marked degraded", async () => {
    const t = await stack.tenant({ quota: { overQuotaPolicy: "DEGRADE", maxOutstandingTokens: 12 } });
    // BALANCED costs ~2.5 per token on the tiny model (hot 1 + warm ~1.5): 10 tokens need ~25 > 12; FAST needs 10.
    const r = await t.http.request<Created>(CREATE_COMPLETION, { input: input({ mode: "BALANCED", maxTokens: 10 }) });
    expect(r.errors).toBeUndefined();
    const c = r.data!.createCompletion;
    expect(c.degraded).toBe(true);
    expect(c.mode).toBe("FAST");
    expect(c.tierSet).toEqual(["tiny.t0"]);
    // While it holds 10 of 12, nothing fits any more: 429.
    const none = await t.http.request<Created>(CREATE_COMPLETION, {
      input: input({ mode: "BALANCED", maxTokens: 10 }),
    });
    if (none.data?.createCompletion) {
      // the first one may already have finished and released its reservation
      expect(none.data.createCompletion.degraded).toBe(true);
    } else {
      expect(none.status).toBe(429);
      expect(none.errors?.[0]?.extensions?.code).toBe("QUOTA_EXCEEDED");
    }
    const row = await waitFor("degraded completion done", async () => {
      const q = await t.http.ok<Row>(COMPLETION_QUERY, { id: c.id });
      return q.completion.status === "COMPLETED" ? q.completion : undefined;
    });
    expect(row.outputTokens).toBeGreaterThan(0);
  });

  it("a late subscriber gets every token exactly once; a reconnect from index k gets k.. exactly once", async () => {
    const t = await stack.tenant();
    const { data } = await t.http.request<Created>(CREATE_COMPLETION, {
      input: input({ maxTokens: 40, seed: "late" }),
    });
    const id = data!.createCompletion.id;
    const ws = wsClient(stack.api.url, t.secret);
    try {
      // A live subscriber that drops after k events…
      const k = 5;
      const firstPart = await new Promise<TokenEvent[]>((resolve, reject) => {
        const got: TokenEvent[] = [];
        const dispose = ws.subscribe<{ completionTokens: TokenEvent }>(
          {
            query: `subscription($id: ID!) { completionTokens(id: $id) { completionId index tokenId text done finishReason } }`,
            variables: { id },
          },
          {
            next: (m) => {
              // Events already in flight when dispose() runs still arrive: keep exactly k.
              if (!m.data || got.length >= k) return;
              got.push(m.data.completionTokens);
              if (got.length === k) {
                dispose();
                resolve(got);
              }
            },
            error: reject,
            complete: () => resolve(got),
          },
        );
      });
      expect(firstPart.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
      // …reconnects with fromIndex = k and gets k.. exactly once.
      const rest = await collectTokens(ws, id, k);
      const all = [...firstPart, ...rest];
      const tokens = all.filter((e) => !e.done);
      expect(tokens.map((e) => e.index)).toEqual([...Array(tokens.length).keys()]);
      expect(all[all.length - 1]).toMatchObject({ done: true, tokenId: -1, text: "", index: tokens.length });
      // A subscriber arriving after the end replays everything exactly once.
      const row = await waitFor("row final", async () => {
        const q = await t.http.ok<Row>(COMPLETION_QUERY, { id });
        return q.completion.status === "COMPLETED" ? q.completion : undefined;
      });
      const late = await collectTokens(ws, id, 0);
      expect(late.filter((e) => !e.done).map((e) => e.index)).toEqual([...Array(tokens.length).keys()]);
      expect(
        late
          .filter((e) => !e.done)
          .map((e) => e.text)
          .join(""),
      ).toBe(row.text);
      expect(tokens.map((e) => e.text).join("")).toBe(row.text);
      expect(late[late.length - 1].finishReason).toBe(row.finishReason);
    } finally {
      await ws.dispose();
    }
  });

  it("many live subscribers at once each get every token and the final event", async () => {
    const t = await stack.tenant();
    const ws = wsClient(stack.api.url, t.secret);
    try {
      const runs = await Promise.all(
        Array.from({ length: 16 }, async (_, i) => {
          const { data } = await t.http.request<Created>(CREATE_COMPLETION, {
            input: input({ maxTokens: 20, seed: `live-${i}` }),
          });
          return collectTokens(ws, data!.createCompletion.id, 0);
        }),
      );
      for (const events of runs) {
        const tokens = events.filter((e) => !e.done);
        expect(tokens.map((e) => e.index)).toEqual([...Array(tokens.length).keys()]);
        expect(events[events.length - 1]).toMatchObject({ done: true, index: tokens.length });
      }
    } finally {
      await ws.dispose();
    }
  });

  it("cancel stops a running completion within a step and frees the tenant's counters", async () => {
    const t = await stack.tenant();
    const { data } = await t.http.request<Created>(CREATE_COMPLETION, {
      input: input({ maxTokens: 150, prompt: "x", seed: "long" }),
    });
    const id = data!.createCompletion.id;
    await waitFor(
      "some tokens",
      async () => (await stack.env.redis.xlen(stack.env.keys.completionStream(t.tenantId, id))) >= 3,
    );
    const cancelled = await t.http.ok<{
      cancelCompletion: { status: string; finishReason: string; outputTokens: number };
    }>(CANCEL_COMPLETION, { id });
    expect(cancelled.cancelCompletion.status).toBe("CANCELLED");
    expect(cancelled.cancelCompletion.finishReason).toBe("CANCELLED");
    expect(cancelled.cancelCompletion.outputTokens).toBeLessThan(150);
    const ws = wsClient(stack.api.url, t.secret);
    const events = await collectTokens(ws, id, 0);
    await ws.dispose();
    expect(events[events.length - 1]).toMatchObject({ done: true, finishReason: "CANCELLED" });
    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0;
    });
    // cancelling a finished completion returns it unchanged
    const again = await t.http.ok<{ cancelCompletion: { status: string; outputTokens: number } }>(CANCEL_COMPLETION, {
      id,
    });
    expect(again.cancelCompletion.status).toBe("CANCELLED");
    expect(again.cancelCompletion.outputTokens).toBe(cancelled.cancelCompletion.outputTokens);
  });

  it("a tenant can neither read, nor subscribe to, nor cancel another tenant's completion (NOT_FOUND)", async () => {
    const owner = await stack.tenant();
    const other = await stack.tenant();
    const { data } = await owner.http.request<Created>(CREATE_COMPLETION, { input: input() });
    const id = data!.createCompletion.id;
    const read = await other.http.request<Row>(COMPLETION_QUERY, { id });
    expect(read.data?.completion ?? null).toBeNull();
    expect(read.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const cancel = await other.http.request(CANCEL_COMPLETION, { id });
    expect(cancel.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const list = await other.http.ok<{ completions: { nodes: Array<{ id: string }> } }>(
      `{ completions(first: 50) { nodes { id } } }`,
    );
    expect(list.completions.nodes.map((n) => n.id)).not.toContain(id);
    const ws = wsClient(stack.api.url, other.secret);
    await expect(collectTokens(ws, id, 0)).rejects.toMatchObject({
      errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: "NOT_FOUND" }) })],
    });
    await ws.dispose();
    // the owner still sees it, untouched
    const mine = await owner.http.ok<Row>(COMPLETION_QUERY, { id });
    expect(mine.completion.id).toBe(id);
    expect(mine.completion.status).not.toBe("CANCELLED");
  });

  it("lists a tenant's completions newest first, filtered by status", async () => {
    const t = await stack.tenant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await t.http.ok<Created>(CREATE_COMPLETION, { input: input({ seed: String(i) }) })).createCompletion.id,
      );
    const page1 = await t.http.ok<{
      completions: { nodes: Array<{ id: string }>; pageInfo: { endCursor: string; hasNextPage: boolean } };
    }>(`{ completions(first: 2) { nodes { id } pageInfo { endCursor hasNextPage } } }`);
    expect(page1.completions.nodes.map((n) => n.id)).toEqual([ids[2], ids[1]]);
    expect(page1.completions.pageInfo.hasNextPage).toBe(true);
    const page2 = await t.http.ok<{ completions: { nodes: Array<{ id: string }> } }>(
      `query($a: String) { completions(first: 2, after: $a) { nodes { id } } }`,
      {
        a: page1.completions.pageInfo.endCursor,
      },
    );
    expect(page2.completions.nodes.map((n) => n.id)).toEqual([ids[0]]);
    await waitFor(
      "all done",
      async () => (await stack.env.db.completion.count({ where: { tenantId: t.tenantId, status: "COMPLETED" } })) === 3,
    );
    const done = await t.http.ok<{ completions: { nodes: Array<{ id: string }> } }>(
      `{ completions(first: 10, status: COMPLETED) { nodes { id } } }`,
    );
    expect(done.completions.nodes).toHaveLength(3);
  });

  it("refuses bad input naming the field", async () => {
    const t = await stack.tenant();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxTokens: 0 }, "input.maxTokens"],
      [{ temperature: 2.5 }, "input.temperature"],
      [{ maxTokens: 200 }, "input.maxTokens"], // beyond the tiny model's 160-token context
      [{ prompt: "x".repeat(70000) }, "input.prompt"],
    ];
    for (const [over, field] of cases) {
      const r = await t.http.request(CREATE_COMPLETION, { input: input(over) });
      expect(r.status).toBe(400);
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
    }
    const unknownModel = await t.http.request(CREATE_COMPLETION, { input: input({ model: "nope" }) });
    expect(["NOT_FOUND", "BAD_USER_INPUT"]).toContain(unknownModel.errors?.[0]?.extensions?.code);
    const suspended = await stack.tenant({ suspended: true });
    const s = await suspended.http.request(CREATE_COMPLETION, { input: input() });
    expect(s.errors?.[0]?.extensions?.code).toMatch(/FORBIDDEN|UNAUTHENTICATED/);
    expect(await stack.env.db.completion.count({ where: { tenantId: suspended.tenantId } })).toBe(0);
  });
});
