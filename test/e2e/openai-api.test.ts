import OpenAI, { NotFoundError, RateLimitError } from "openai";
import { COMPLETION_QUERY, CREATE_COMPLETION, waitFor } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

/**
 * The OpenAI-compatible REST API (/v1) against the real stack: an in-process API, one
 * worker on the tiny model (context 160 tokens). The official `openai` client for what an
 * application would do; raw fetch for the wire format and the edges.
 */
// Bodies read off the wire: the assertions below check their shape field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

describe("OpenAI-compatible REST API", () => {
  let stack: TestStack;
  let base: string;
  beforeAll(async () => {
    // A small step delay so a 100-token completion is still running when a client leaves.
    stack = await startE2eStack({ workers: 1, workerEnv: { WORKER_STEP_DELAY_MS: "10" } });
    base = `${stack.api.baseUrl}/v1`;
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  const client = (secret: string) => new OpenAI({ apiKey: secret, baseURL: base, maxRetries: 0 });
  const post = (path: string, secret: string | null, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret ? { authorization: `Bearer ${secret}` } : {}),
        ...headers,
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  /** The `data:` payloads of an SSE body, in order. */
  const sseData = (text: string) =>
    text
      .split("\n\n")
      .filter((block) => block.startsWith("data: "))
      .map((block) => block.slice("data: ".length));

  describe("with the openai client", () => {
    it("chat completion, not streamed: text, finish_reason and usage", async () => {
      const t = await stack.tenant();
      const r = await client(t.secret).chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "Hello" }],
        max_tokens: 8,
        seed: 3,
        temperature: 0,
        // @ts-expect-error this runtime's extension
        mode: "FAST",
      });
      expect(r.id).toMatch(/^cmp_/);
      expect(r.object).toBe("chat.completion");
      expect(r.model).toBe("tiny");
      expect(r.choices).toHaveLength(1);
      expect(["stop", "length"]).toContain(r.choices[0].finish_reason);
      expect(r.usage!.prompt_tokens).toBe(Buffer.byteLength("<|user|>\nHello\n<|assistant|>\n"));
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
      const row = await stack.env.db.completion.findUniqueOrThrow({ where: { id: r.id } });
      expect(r.choices[0].message.content).toBe(row.text);
      expect(row.mode).toBe("FAST");
    });

    it("chat completion, streamed: the deltas join to the completion's text", async () => {
      const t = await stack.tenant();
      const stream = await client(t.secret).chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "Hi" }],
        max_tokens: 10,
        seed: 4,
        stream: true,
      });
      let text = "";
      let id = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        id = chunk.id;
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(["stop", "length"]).toContain(finish);
      const row = await waitFor("row final", async () => {
        const r = await stack.env.db.completion.findUniqueOrThrow({ where: { id } });
        return r.status === "COMPLETED" ? r : undefined;
      });
      expect(text).toBe(row.text);
      expect(text.length).toBeGreaterThan(0);
    });

    it("completion (legacy /v1/completions) and the models list", async () => {
      const t = await stack.tenant();
      const c = client(t.secret);
      const r = await c.completions.create({ model: "tiny", prompt: "Once", max_tokens: 6, seed: 5 });
      expect(r.object).toBe("text_completion");
      expect(r.usage!.prompt_tokens).toBe(4);
      expect(r.choices[0].text.length).toBeGreaterThan(0);
      const models = [];
      for await (const m of c.models.list()) models.push(m);
      expect(models.map((m) => m.id)).toEqual(["tiny"]);
      expect((await c.models.retrieve("tiny")).id).toBe("tiny");
    });

    it("429 is a RateLimitError with Retry-After and x-ratelimit headers", async () => {
      const t = await stack.tenant({ quota: { requestsPerMinute: 1 } });
      const c = client(t.secret);
      await c.completions.create({ model: "tiny", prompt: "a", max_tokens: 2 });
      const refused = await c.completions.create({ model: "tiny", prompt: "b", max_tokens: 2 }).catch((e) => e);
      expect(refused).toBeInstanceOf(RateLimitError);
      expect(refused.status).toBe(429);
      expect(refused.error).toMatchObject({ type: "rate_limit_error", code: "RATE_LIMITED" });
      const retryAfter = Number(refused.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(Number(refused.headers.get("retry-after-ms"))).toBeGreaterThan(0);
      expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
      expect(refused.headers.get("x-ratelimit-limit-requests")).toBe("1");
      expect(Number(refused.headers.get("x-ratelimit-limit-tokens"))).toBeGreaterThan(0);
      expect(refused.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+s$/);
    });

    it("another tenant's completion and an ungranted model are not visible", async () => {
      const a = await stack.tenant();
      const b = await stack.tenant({ tierIds: [] });
      const mine = await client(a.secret).chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "x" }],
        max_tokens: 2,
      });
      expect((await client(a.secret).chat.completions.retrieve(mine.id)).id).toBe(mine.id);
      const other = await client(b.secret)
        .chat.completions.retrieve(mine.id)
        .catch((e) => e);
      expect(other).toBeInstanceOf(NotFoundError);
      // b has no grant on any tier of tiny: the model is neither listed nor readable.
      const listed = [];
      for await (const m of client(b.secret).models.list()) listed.push(m);
      expect(listed).toEqual([]);
      expect(
        await client(b.secret)
          .models.retrieve("tiny")
          .catch((e) => e),
      ).toBeInstanceOf(NotFoundError);
      // The denial of another tenant's completion is audited, as GraphQL's.
      await waitFor(
        "denial audited",
        async () =>
          (await stack.env.db.auditLog.count({
            where: { action: "access.owner", resource: `completion:${mine.id}`, decision: "DENY" },
          })) > 0,
      );
    });
  });

  describe("wire format and edges (raw fetch)", () => {
    it("SSE: chat.completion.chunk events, usage last with include_usage, then [DONE]", async () => {
      const t = await stack.tenant();
      const res = await post("/chat/completions", t.secret, {
        model: "tiny",
        messages: [
          { role: "system", content: "terse" },
          { role: "user", content: "Hi" },
        ],
        max_tokens: 6,
        stream: true,
        stream_options: { include_usage: true },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const data = sseData(await res.text());
      expect(data.at(-1)).toBe("[DONE]");
      const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Json);
      expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
      for (const c of chunks.slice(0, -1)) {
        expect(c.object).toBe("chat.completion.chunk");
        expect(c.usage).toBeNull();
      }
      const last = chunks.at(-1)!;
      expect(last.choices).toEqual([]);
      const finishing = chunks.at(-2)!;
      expect(["stop", "length"]).toContain(finishing.choices[0].finish_reason);
      const pieces = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? "");
      expect(last.usage.completion_tokens).toBeGreaterThan(0);
      expect(last.usage.prompt_tokens).toBe(Buffer.byteLength("<|system|>\nterse\n<|user|>\nHi\n<|assistant|>\n"));
      const row = await stack.env.db.completion.findUniqueOrThrow({ where: { id: last.id } });
      expect(pieces.join("")).toBe(row.text);
      expect(last.usage.completion_tokens).toBe(row.outputTokens);
    });

    it("refusals in OpenAI's error shape: n=2, a bad field, bad JSON, no key (401), an ADMIN key (403)", async () => {
      const t = await stack.tenant();
      const body = { model: "tiny", prompt: "x", max_tokens: 2 };
      const cases: Array<[Response, number, string | null, string]> = [
        [await post("/completions", t.secret, { ...body, n: 2 }), 400, "n", "BAD_USER_INPUT"],
        [await post("/completions", t.secret, { ...body, temperature: 3 }), 400, "temperature", "BAD_USER_INPUT"],
        [
          await post("/chat/completions", t.secret, { model: "tiny", messages: [{ role: "bot", content: "x" }] }),
          400,
          "messages.0.role",
          "BAD_USER_INPUT",
        ],
        [await post("/completions", t.secret, { ...body, max_tokens: 4097 }), 400, "max_tokens", "BAD_USER_INPUT"],
        [await post("/completions", t.secret, "{not json"), 400, null, "BAD_USER_INPUT"],
        [await post("/completions", null, body), 401, null, "UNAUTHENTICATED"],
        [await post("/completions", stack.adminKey, body), 403, null, "FORBIDDEN"],
        [await post("/completions", t.secret, { ...body, model: "no-such-model" }), 404, "model", "NOT_FOUND"],
      ];
      for (const [res, status, param, code] of cases) {
        expect(res.status).toBe(status);
        const e = ((await res.json()) as Json).error;
        expect(typeof e.message).toBe("string");
        expect(typeof e.type).toBe("string");
        expect(e.code).toBe(code);
        if (param) {
          expect(e.param).toBe(param);
          expect(e.message).toContain(param);
        }
      }
    });

    it("requests are counted by route in the request metric (/v1/models/{id} as other)", async () => {
      const t = await stack.tenant();
      await fetch(`${base}/models`, { headers: { authorization: `Bearer ${t.secret}` } });
      const metrics = await (
        await fetch(`${stack.api.baseUrl}/metrics`, { headers: { authorization: `Bearer ${stack.adminKey}` } })
      ).text();
      expect(metrics).toMatch(/lite_api_http_requests_total\{route="\/v1\/models",status="200"\} [1-9]/);
      expect(metrics).toMatch(/lite_api_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} [1-9]/);
      expect(metrics).not.toMatch(/route="\/v1\/models\/tiny"/);
    });

    it("limits at the edge: 4 stop sequences, the prompt bytes, the body bytes", async () => {
      const t = await stack.tenant();
      const body = { model: "tiny", prompt: "x", max_tokens: 2 };
      const four = await post("/completions", t.secret, { ...body, stop: ["a", "b", "c", "d"] });
      expect(four.status).toBe(200);
      const five = await post("/completions", t.secret, { ...body, stop: ["a", "b", "c", "d", "e"] });
      expect(five.status).toBe(400);
      expect(((await five.json()) as Json).error.param).toBe("stop");
      // MAX_PROMPT_BYTES (65536): one byte over is refused naming the field (chat: messages).
      const overPrompt = await post("/chat/completions", t.secret, {
        model: "tiny",
        messages: [{ role: "user", content: "y".repeat(65536) }],
        max_tokens: 2,
      });
      expect(overPrompt.status).toBe(400);
      expect(((await overPrompt.json()) as Json).error.param).toBe("messages");
      // The body limit is /graphql's (6 × MAX_PROMPT_BYTES + 64 KiB): at it the body is read,
      // one byte over it is 413, both in OpenAI's shape. A fresh tenant: 413s spend its budget.
      const big = await stack.tenant();
      const limit = 65536 * 6 + 64 * 1024;
      const sized = (bytes: number) => {
        const shell = JSON.stringify({ model: "tiny", max_tokens: 2, prompt: "" });
        return shell.replace('"prompt":""', `"prompt":"${"z".repeat(bytes - shell.length)}"`);
      };
      expect(sized(limit)).toHaveLength(limit);
      const atLimit = await post("/completions", big.secret, sized(limit));
      expect(atLimit.status).toBe(400);
      expect(((await atLimit.json()) as Json).error.param).toBe("prompt");
      const overLimit = await post("/completions", big.secret, sized(limit + 1));
      expect(overLimit.status).toBe(413);
      expect(((await overLimit.json()) as Json).error).toMatchObject({ type: "invalid_request_error" });
    });

    it("refused /v1 requests spend the tenant's one client-error budget, /graphql's too", async () => {
      const t = await stack.tenant();
      // A body one byte over the limit is refused 413 and costs one unit per 16 KiB (29):
      // four of them overdraw CLIENT_ERROR_BURST (100) by 16 units, ~3 s of refill at 5/s.
      const oversized = JSON.stringify({ prompt: "z".repeat(65536 * 6 + 64 * 1024) });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await post("/completions", t.secret, oversized)).status);
      expect(statuses).toEqual([413, 413, 413, 413, 429]);
      const graphql = await t.http.request(CREATE_COMPLETION, { input: { prompt: "x", maxTokens: 2 } });
      expect(graphql.status).toBe(429);
      expect(graphql.errors?.[0]?.extensions?.reason).toBe("CLIENT_ERRORS");
    });

    it("a client that disconnects mid-stream cancels the completion and releases admission", async () => {
      const t = await stack.tenant();
      const res = await post(
        "/completions",
        t.secret,
        { model: "tiny", prompt: "Long", max_tokens: 140, stream: true, temperature: 0, seed: 9 },
        {},
      );
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const id = (JSON.parse(sseData(first)[0]) as Json).id as string;
      await reader.cancel();
      const row = await waitFor(
        "row CANCELLED",
        async () => {
          const r = await stack.env.db.completion.findUniqueOrThrow({ where: { id } });
          return r.status === "CANCELLED" ? r : undefined;
        },
        { timeoutMs: 10000 },
      );
      expect(row.outputTokens).toBeLessThan(140);
      await waitFor("admission released", async () => {
        const u = await stack.admission.usage(t.tenantId);
        return u.concurrent === 0 && u.outstandingTokens === 0;
      });
    });

    it("over maxConcurrentRequests: 429 QUOTA_EXCEEDED with Retry-After, no per-minute headers", async () => {
      const t = await stack.tenant({ quota: { maxConcurrentRequests: 1 } });
      const body = { model: "tiny", prompt: "Busy", max_tokens: 140, stream: true };
      const running = await post("/completions", t.secret, body);
      const reader = running.body!.getReader();
      await reader.read();
      const refused = await post("/completions", t.secret, body);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get("x-ratelimit-limit-requests")).toBeNull();
      expect(((await refused.json()) as Json).error).toMatchObject({
        code: "QUOTA_EXCEEDED",
        type: "rate_limit_error",
      });
      await reader.cancel();
      await waitFor("admission released", async () => (await stack.admission.usage(t.tenantId)).concurrent === 0);
    });

    it("Idempotency-Key: a retry gets the same completion", async () => {
      const t = await stack.tenant();
      const body = { model: "tiny", prompt: "same", max_tokens: 4, seed: 1 };
      const one = (await (await post("/completions", t.secret, body, { "idempotency-key": "retry-1" })).json()) as Json;
      const two = (await (await post("/completions", t.secret, body, { "idempotency-key": "retry-1" })).json()) as Json;
      expect(one.id).toMatch(/^cmp_/);
      expect(two.id).toBe(one.id);
      expect(two.choices[0].text).toBe(one.choices[0].text);
      expect(await stack.env.db.completion.count({ where: { tenantId: t.tenantId } })).toBe(1);
      // Keys are the tenant's own: another tenant's same key is another completion.
      const u = await stack.tenant();
      const theirs = (await (
        await post("/completions", u.secret, body, { "idempotency-key": "retry-1" })
      ).json()) as Json;
      expect(theirs.id).toMatch(/^cmp_/);
      expect(theirs.id).not.toBe(one.id);
      // Through the SDK: the key as a request option.
      const sdk = client(t.secret);
      const opts = { headers: { "Idempotency-Key": "sdk-1" } };
      const first = await sdk.completions.create({ model: "tiny", prompt: "sdk", max_tokens: 3 }, opts);
      const again = await sdk.completions.create({ model: "tiny", prompt: "sdk", max_tokens: 3 }, opts);
      expect(again.id).toBe(first.id);
      const bad = await post("/completions", t.secret, body, { "idempotency-key": "é" });
      expect(bad.status).toBe(400);
    });

    it("a stop sequence ends the output before its first occurrence", async () => {
      const t = await stack.tenant();
      const body = { model: "tiny", prompt: "Stop", max_tokens: 24, seed: 11, temperature: 0 };
      const full = ((await (await post("/completions", t.secret, body)).json()) as Json).choices[0].text as string;
      expect(full.length).toBeGreaterThan(6);
      const stop = full.slice(4, 6);
      const expected = full.slice(0, full.indexOf(stop));
      const cut = (await (await post("/completions", t.secret, { ...body, stop })).json()) as Json;
      expect(cut.choices[0].text).toBe(expected);
      expect(cut.choices[0].finish_reason).toBe("stop");
      const streamed = sseData(
        await (await post("/completions", t.secret, { ...body, stop: [stop], stream: true })).text(),
      );
      const pieces = streamed.slice(0, -1).map((d) => (JSON.parse(d) as Json).choices[0].text as string);
      expect(pieces.join("")).toBe(expected);
    });

    it("the same request through REST and GraphQL gives the same text", async () => {
      const t = await stack.tenant();
      const rest = (await (
        await post("/completions", t.secret, {
          model: "tiny",
          prompt: "Same",
          max_tokens: 10,
          seed: 42,
          temperature: 0.8,
          mode: "FAST",
        })
      ).json()) as Json;
      const created = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
        input: { model: "tiny", prompt: "Same", maxTokens: 10, seed: "42", temperature: 0.8, mode: "FAST" },
      });
      const text = await waitFor("GraphQL completion done", async () => {
        const q = await t.http.ok<{ completion: { status: string; text: string } }>(COMPLETION_QUERY, {
          id: created.createCompletion.id,
        });
        return q.completion.status === "COMPLETED" ? q.completion.text : undefined;
      });
      expect(rest.choices[0].text).toBe(text);
      expect(text.length).toBeGreaterThan(0);
    });
  });

  it("503 with Retry-After in OpenAI's shape when the deployment's queued work is over MAX_QUEUED_TOKENS", async () => {
    const saturated = await startE2eStack({ workers: 0, apiEnv: { MAX_QUEUED_TOKENS: "4" } });
    try {
      const t = await saturated.tenant();
      const res = await fetch(`${saturated.api.baseUrl}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t.secret}` },
        body: JSON.stringify({ model: "tiny", prompt: "x", max_tokens: 5, mode: "FAST" }),
      });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as Json).error).toMatchObject({
        code: "UNAVAILABLE",
        type: "service_unavailable_error",
      });
      expect((await saturated.admission.usage(t.tenantId)).concurrent).toBe(0);
    } finally {
      await saturated.close();
    }
  }, 60000);
});
