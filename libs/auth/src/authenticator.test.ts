/**
 * Issue 8, abuse bench attack (e): 16 requests at once with a key whose cache entry had just
 * expired were 16 PostgreSQL lookups of the same row; the pool grew by 8 connections (a SCRAM
 * exchange and a backend fork each) and the API's event loop stalled ~100 ms as the attack
 * began. Concurrent requests with one uncached key now share one lookup; an invalidation
 * still wins over a lookup that began before it. PostgreSQL is a counting stub here.
 */
import { ManualClock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { Redis, RedisKeys } from "@lite/redis";
import { hashApiKey } from "./api-key";
import { Authenticator } from "./authenticator";

interface Row {
  id: string;
  hash: string;
  role: "TENANT";
  tenantId: string;
  revokedAt: Date | null;
  tenant: { suspended: boolean };
}

const SECRET = "lite_single_flight_0123456789abcdefghij";
const TTL_MS = 60_000;

/** A database holding one key; each findUnique resolves when `release()` is called. */
function stubDb() {
  const rows = new Map<string, Row>([
    [
      hashApiKey(SECRET),
      {
        id: "key_1",
        hash: hashApiKey(SECRET),
        role: "TENANT",
        tenantId: "ten_1",
        revokedAt: null,
        tenant: { suspended: false },
      },
    ],
  ]);
  const waiting: Array<() => void> = [];
  let queries = 0;
  const db = {
    apiKey: {
      findUnique: ({ where }: { where: { hash: string } }) => {
        queries++;
        // the row as it was when the query ran, answered when released
        const row = rows.get(where.hash);
        const read = row ? { ...row } : null;
        return new Promise<Row | null>((resolve) => waiting.push(() => resolve(read)));
      },
      updateMany: () => Promise.resolve({ count: 1 }),
    },
  };
  return {
    db: db as unknown as PrismaClient,
    rows,
    queries: () => queries,
    /** completes every query in flight */
    release: async () => {
      for (const done of waiting.splice(0)) done();
      await new Promise((r) => setImmediate(r));
    },
  };
}

function authenticator(db: PrismaClient, clock: ManualClock) {
  return new Authenticator({
    db,
    redis: { publish: () => Promise.resolve(1) } as unknown as Redis,
    keys: { authInvalidationChannel: () => "auth" } as unknown as RedisKeys,
    clock,
    cacheTtlMs: TTL_MS,
  });
}

async function burst(auth: Authenticator, secret: string, n: number, release: () => Promise<void>) {
  const all = Promise.all(Array.from({ length: n }, () => auth.authenticate(secret)));
  await release();
  return all;
}

describe("Authenticator: concurrent requests with an uncached key", () => {
  it("16 at once with a key not yet cached are one lookup; cached after it, none", async () => {
    const s = stubDb();
    const auth = authenticator(s.db, new ManualClock(1_000));
    const results = await burst(auth, SECRET, 16, s.release);
    expect(results.every((r) => r.ok && r.value.apiKeyId === "key_1")).toBe(true);
    expect(s.queries()).toBe(1);
    expect((await auth.authenticate(SECRET)).ok).toBe(true);
    expect(s.queries()).toBe(1);
  });

  it("16 at once just after the entry expired are one lookup", async () => {
    const s = stubDb();
    const clock = new ManualClock(1_000);
    const auth = authenticator(s.db, clock);
    await burst(auth, SECRET, 1, s.release);
    clock.advance(TTL_MS);
    const results = await burst(auth, SECRET, 16, s.release);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(s.queries()).toBe(2);
  });

  it("16 at once with an unknown key are one lookup, all UNAUTHENTICATED", async () => {
    const s = stubDb();
    const auth = authenticator(s.db, new ManualClock(1_000));
    const results = await burst(auth, "lite_unknown_0123456789abcdefghijklmn", 16, s.release);
    expect(results.map((r) => (r.ok ? "OK" : r.error.code))).toEqual(Array(16).fill("UNAUTHENTICATED"));
    expect(s.queries()).toBe(1);
  });

  it("a request after an invalidation does not join a lookup that began before it", async () => {
    const s = stubDb();
    const auth = authenticator(s.db, new ManualClock(1_000));
    const before = auth.authenticate(SECRET);
    // revoked while the first lookup is in flight (its row, read before, said valid)
    s.rows.get(hashApiKey(SECRET))!.revokedAt = new Date();
    await auth.invalidate({ kind: "key", apiKeyId: "key_1" });
    const after = auth.authenticate(SECRET);
    await s.release();
    expect(s.queries()).toBe(2);
    expect((await after).ok).toBe(false);
    void (await before);
    // nothing stale was cached: the next request sees the revocation without a new lookup
    const next = await auth.authenticate(SECRET);
    expect(!next.ok && next.error.reason).toBe("KEY_REVOKED");
    expect(s.queries()).toBe(2);
  });
});
