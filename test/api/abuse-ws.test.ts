/**
 * Issue 8, findings 2 and 5 (and the graphql-ws syntax error of 8): WebSocket limits. Frames
 * are bounded by the HTTP body limit (before any key), a socket that never says
 * connection_init is closed, subscriptions per connection and connections per API key and
 * per tenant are bounded, and one bad `subscribe` answers an error for that operation only.
 */
import WebSocket from "ws";
import { newId } from "@lite/core";
import {
  createKey,
  createTenant,
  CREATE_COMPLETION,
  gqlOk,
  seedModel,
  type TenantWithKey,
  type TestEnv,
} from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { apiMetrics } from "../../apps/api/src/metrics";
import { startStack, type TestStack } from "../support/stack";

const MAX_PROMPT_BYTES = 2048;
const BODY_LIMIT = MAX_PROMPT_BYTES * 6 + 64 * 1024;
let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;

beforeAll(async () => {
  stack = await startStack({
    prepare: (e) => seedModel(e.db),
    apiEnv: {
      MAX_PROMPT_BYTES: String(MAX_PROMPT_BYTES),
      WS_CONNECTION_INIT_TIMEOUT_MS: "400",
      WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: "3",
      WS_MAX_CONNECTIONS_PER_KEY: "2",
      WS_MAX_CONNECTIONS_PER_TENANT: "3",
      WS_SUBSCRIBES_PER_SECOND: "1",
      WS_SUBSCRIBE_BURST: "6",
      REFUSAL_TARPIT_MS: "300",
    },
  });
  ({ env, api } = stack);
});

afterAll(async () => {
  await stack?.close();
});

interface Message {
  type: string;
  id?: string;
  payload?: { errors?: unknown; data?: unknown } & Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** A raw graphql-transport-ws socket: every message kept, the close code awaited. */
class RawSocket {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string) {
    this.ws = new WebSocket(url, "graphql-transport-ws");
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.ws.on("error", () => undefined);
    this.ws.on("message", (data) => this.messages.push(JSON.parse(data.toString()) as Message));
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  async next(predicate: (m: Message) => boolean, timeoutMs = 3000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.messages.find(predicate);
      if (m) return m;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed: ${JSON.stringify(this.messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no such message within ${timeoutMs} ms: ${JSON.stringify(this.messages)}`);
  }

  /** Opens and acknowledges a connection with this key (throws if it is closed instead). */
  static async connect(url: string, key: string): Promise<RawSocket> {
    const s = new RawSocket(url);
    await s.opened;
    s.send({ type: "connection_init", payload: { authorization: `Bearer ${key}` } });
    const outcome = await Promise.race([
      s.next((m) => m.type === "connection_ack").then(() => "ack" as const),
      s.closed.then((c) => c),
    ]);
    if (outcome !== "ack") throw Object.assign(new Error(`closed ${outcome.code}`), { code: outcome.code });
    return s;
  }

  close(): void {
    this.ws.close();
  }
}

async function closeCodeOf(url: string, key: string): Promise<number | "ack"> {
  try {
    const s = await RawSocket.connect(url, key);
    s.close();
    return "ack";
  } catch (e) {
    return (e as { code: number }).code;
  }
}

const queued = async (t: TenantWithKey): Promise<string> =>
  (await gqlOk(api.url, t.secret, CREATE_COMPLETION, { input: { prompt: "hi", maxTokens: 4, mode: "FAST" } }))
    .createCompletion.id;

const TOKENS = "subscription($id: ID!) { completionTokens(id: $id) { index } }";

describe("frames and the handshake", () => {
  it("a connection_init frame over the HTTP body limit closes the socket (1009) before any key check", async () => {
    const s = new RawSocket(api.wsUrl);
    await s.opened;
    s.send({ type: "connection_init", payload: { pad: "x".repeat(BODY_LIMIT + 1024) } });
    expect((await s.closed).code).toBe(1009);
  });

  it("a mutation carrying a 1 MB seed over WebSocket is refused by size and stores nothing", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    s.send({
      id: "1",
      type: "subscribe",
      payload: {
        query: CREATE_COMPLETION,
        variables: { input: { prompt: "hi", maxTokens: 4, seed: "9".repeat(1 << 20) } },
      },
    });
    expect((await s.closed).code).toBe(1009);
    expect(await env.db.completion.count({ where: { tenantId: t.tenantId } })).toBe(0);
  });

  it("a socket that never sends connection_init is closed (4408) after WS_CONNECTION_INIT_TIMEOUT_MS", async () => {
    const s = new RawSocket(api.wsUrl);
    await s.opened;
    const started = Date.now();
    expect((await s.closed).code).toBe(4408);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("subscriptions per connection", () => {
  it("the one over WS_MAX_SUBSCRIPTIONS_PER_CONNECTION answers QUOTA_EXCEEDED; the socket stays and frees a slot on complete", async () => {
    const t = await createTenant(env.db);
    const id = await queued(t);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    try {
      for (const n of ["1", "2", "3", "4"])
        s.send({ id: n, type: "subscribe", payload: { query: TOKENS, variables: { id } } });
      const refused = await s.next((m) => m.id === "4" && m.type === "error");
      expect(refused.payload?.[0]?.extensions).toMatchObject({
        code: "QUOTA_EXCEEDED",
        reason: "SUBSCRIPTIONS_PER_CONNECTION",
      });
      expect(s.messages.filter((m) => m.type === "error")).toHaveLength(1);
      s.send({ id: "1", type: "complete" });
      await new Promise((r) => setTimeout(r, 100));
      s.send({ id: "5", type: "subscribe", payload: { query: TOKENS, variables: { id } } });
      await new Promise((r) => setTimeout(r, 300));
      expect(s.messages.filter((m) => m.id === "5")).toEqual([]);
      expect(s.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      s.close();
    }
  });
});

describe("operations started per second", () => {
  it("a tenant replaying subscriptions as fast as it can is held to WS_SUBSCRIBE_BURST, refused RATE_LIMITED, then closed 4429", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    const subscribe = (n: number) =>
      s.send({ id: String(n), type: "subscribe", payload: { query: TOKENS, variables: { id: newId("completion") } } });
    const codeOf = async (n: number) => {
      const m = await s.next((x) => x.id === String(n) && (x.type === "error" || x.type === "next"));
      const errors = (m.type === "error" ? m.payload : m.payload?.errors) as Array<{ extensions?: { code?: string } }>;
      return errors?.[0]?.extensions?.code;
    };
    // Each operation ends at once (an unknown completion is NOT_FOUND): only the start rate
    // bounds how much work such a replay flood costs the API.
    const codes: Array<string | undefined> = [];
    for (let n = 1; n <= 10; n++) {
      subscribe(n); // one at a time, so WS_MAX_SUBSCRIPTIONS_PER_CONNECTION never binds
      codes.push(await codeOf(n));
    }
    const served = codes.filter((c) => c === "NOT_FOUND").length;
    expect(served).toBeGreaterThanOrEqual(6); // the burst
    expect(served).toBeLessThanOrEqual(7); // plus at most one refilled at 1/s meanwhile
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(10 - served);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    // Past WS_SUBSCRIBE_BURST refusals in a row the socket is closed instead of answered.
    for (let n = 11; n <= 40; n++) subscribe(n);
    expect((await s.closed).code).toBe(4429);
  });

  it("a tenant refused for starting too fast is paced one at a time after a pause, not given its burst again; another tenant keeps its burst", async () => {
    // One at a time (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION never binds); each ends at once (NOT_FOUND).
    const codesOf = async (s: RawSocket, from: number, to: number) => {
      const codes: Array<string | undefined> = [];
      for (let n = from; n <= to; n++) {
        s.send({
          id: String(n),
          type: "subscribe",
          payload: { query: TOKENS, variables: { id: newId("completion") } },
        });
        const m = await s.next((x) => x.id === String(n) && (x.type === "error" || x.type === "next"));
        const errors = (m.type === "error" ? m.payload : m.payload?.errors) as Array<{
          extensions?: { code?: string };
        }>;
        codes.push(errors?.[0]?.extensions?.code);
      }
      return codes;
    };
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    // The burst (6), until the first refusal.
    let n = 0;
    const first: Array<string | undefined> = [];
    while (!first.includes("RATE_LIMITED") && n < 12) {
      n++;
      first.push(...(await codesOf(s, n, n)));
    }
    expect(first.filter((c) => c === "NOT_FOUND").length).toBeGreaterThanOrEqual(6);
    expect(first).toContain("RATE_LIMITED");
    // 3.2 s at 1/s refills 3 units for a tenant within its rate; a tenant refused within
    // WS_SUBSCRIBE_BURST_COOLDOWN_SECONDS (10 s by default) holds one at most, and then
    // gains one per second like any other.
    await new Promise((r) => setTimeout(r, 3200));
    const startedAt = Date.now();
    const second = await codesOf(s, n + 1, n + 3);
    const refilled = Math.floor((Date.now() - startedAt) / 1000);
    expect(second[0]).toBe("NOT_FOUND");
    expect(second.filter((c) => c === "NOT_FOUND").length).toBeLessThanOrEqual(1 + refilled);
    expect(second.filter((c) => c === "RATE_LIMITED").length).toBeGreaterThanOrEqual(2 - refilled);
    s.close();
    // Pacing is per tenant: another tenant on the same API process has its whole burst.
    const u = await createTenant(env.db);
    const other = await RawSocket.connect(api.wsUrl, u.secret);
    expect(await codesOf(other, 1, 6)).toEqual(Array(6).fill("NOT_FOUND"));
    other.close();
  });
});

describe("a flood of operations in one burst", () => {
  const total = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) =>
    (await c.get()).values.reduce((n, v) => n + v.value, 0);

  it("1,000 subscribes written at once: refused up to the limits, closed 4429, the rest dropped unread", async () => {
    const refusedBefore = await total(apiMetrics.wsRefusals);
    const droppedBefore = await total(apiMetrics.wsFramesDropped);
    const t = await createTenant(env.db);
    const id = await queued(t); // stays queued: its subscriptions hold their slots
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    for (let n = 1; n <= 1000; n++)
      s.send({ id: String(n), type: "subscribe", payload: { query: TOKENS, variables: { id } } });
    expect((await s.closed).code).toBe(4429);
    // 3 served (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION), WS_SUBSCRIBE_BURST + 1 refused in a row,
    // then the socket is shut: what was already read is dropped unparsed, the rest unread.
    const refused = (await total(apiMetrics.wsRefusals)) - refusedBefore;
    const dropped = (await total(apiMetrics.wsFramesDropped)) - droppedBefore;
    expect(refused).toBe(7);
    expect(dropped).toBeLessThanOrEqual(1000 - 3 - 7);
  });
});

describe("connections per API key and per tenant", () => {
  it("a third connection with one key is closed 4429 after the tarpit; closing one lets another in", async () => {
    const t = await createTenant(env.db);
    const a = await RawSocket.connect(api.wsUrl, t.secret);
    const b = await RawSocket.connect(api.wsUrl, t.secret);
    const refusedAt = Date.now();
    expect(await closeCodeOf(api.wsUrl, t.secret)).toBe(4429);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(300 - 20); // the tarpit (REFUSAL_TARPIT_MS)
    a.close();
    await a.closed;
    await new Promise((r) => setTimeout(r, 100));
    const c = await RawSocket.connect(api.wsUrl, t.secret);
    b.close();
    c.close();
  });

  it("a fourth connection of one tenant, over two keys, is closed 4429", async () => {
    const t = await createTenant(env.db);
    const second = await createKey(env.db, "TENANT", t.tenantId);
    const open = [
      await RawSocket.connect(api.wsUrl, t.secret),
      await RawSocket.connect(api.wsUrl, t.secret),
      await RawSocket.connect(api.wsUrl, second.secret),
    ];
    expect(await closeCodeOf(api.wsUrl, second.secret)).toBe(4429);
    // another tenant is not affected
    const u = await createTenant(env.db);
    expect(await closeCodeOf(api.wsUrl, u.secret)).toBe("ack");
    for (const s of open) s.close();
  });
});

describe("one bad operation does not close the socket", () => {
  it("a syntax error answers GRAPHQL_PARSE_FAILED for that id; the next operation is served", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    try {
      s.send({ id: "bad", type: "subscribe", payload: { query: "subscription {" } });
      const e = await s.next((m) => m.id === "bad");
      expect(e.type).toBe("error");
      expect(e.payload?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
      s.send({ id: "ok", type: "subscribe", payload: { query: "{ me { role } }" } });
      const ok = await s.next((m) => m.id === "ok" && m.type === "next");
      expect(ok.payload?.data).toEqual({ me: { role: "TENANT" } });
    } finally {
      s.close();
    }
  });

  it("a NUL byte in completionTokens(id) answers BAD_USER_INPUT naming id", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    try {
      s.send({ id: "n", type: "subscribe", payload: { query: TOKENS, variables: { id: "cmp_\u0000" } } });
      const e = await s.next((m) => m.id === "n");
      expect(e.type).toBe("error");
      expect(e.payload?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "id" });
      expect(e.payload?.[0]?.extensions?.http).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it("resolver errors over WebSocket go through the same formatting as HTTP (no `http` extension)", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    try {
      s.send({
        id: "m",
        type: "subscribe",
        payload: { query: TOKENS, variables: { id: "cmp_0123456789abcdefghjkmnpqrs" } },
      });
      const e = await s.next((m) => m.id === "m" && (m.type === "error" || m.type === "next"));
      const errors = (e.type === "next" ? e.payload?.errors : e.payload) as { extensions?: Record<string, unknown> }[];
      expect(errors[0].extensions?.code).toBe("NOT_FOUND");
      expect(errors[0].extensions?.http).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it("an operation over the GraphQL limits answers an error for that id", async () => {
    const t = await createTenant(env.db);
    const s = await RawSocket.connect(api.wsUrl, t.secret);
    try {
      const q = `{ ${Array.from({ length: 100 }, (_, i) => `p${i}: me { role }`).join(" ")} }`;
      s.send({ id: "a", type: "subscribe", payload: { query: q } });
      const e = await s.next((m) => m.id === "a");
      expect(e.type).toBe("error");
      expect(e.payload?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    } finally {
      s.close();
    }
  });
});
