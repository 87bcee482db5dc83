/**
 * Issue 8, abuse bench attack (f) (16 clients sending random keys): the per-source throttle
 * of failed authentication let bursts through. Its budget was checked before the lookup and
 * counted after it, so concurrent unknown keys all went to PostgreSQL and the audit log; and
 * when a flooding source's window rolled over, every client (tarpitted until that instant)
 * came back at once and the whole budget was looked up and audited together — a stall of the
 * API's event loop each window. Now an unknown key takes its place in the budget before its
 * lookup, and the window after a throttled one releases its budget evenly. Valid keys are
 * never refused for others' lookups in flight: the first version of that fix refused a
 * client's first burst of 40 creates with its new key from one address (many-processes
 * e2e test, RATE_LIMITED AUTH_FAILURES), and would have refused a proxy's new tenants alike.
 * The throttle runs here on the test stack's real services (PostgreSQL lookups, audit queue),
 * with its own budget, window and a manual clock. A source's lookups of unknown keys run at
 * most LOOKUPS_IN_FLIGHT_PER_SOURCE at once.
 */
import { ManualClock } from "@lite/core";
import { createTenant, type TenantWithKey } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { AuthThrottle, LOOKUPS_IN_FLIGHT_PER_SOURCE } from "../../apps/api/src/http/auth-throttle";
import { startStack, type TestStack } from "../support/stack";

const BUDGET = 5;
const WINDOW_MS = 10_000;
let stack: TestStack;
let api: RunningApiServer;
let t: TenantWithKey;

beforeAll(async () => {
  stack = await startStack();
  api = stack.api;
  t = await createTenant(stack.env.db);
});

afterAll(async () => {
  await stack?.close();
});

let n = 0;
const randomKey = () => `lite_burst_${n++}_${Math.random().toString(36).slice(2)}abcdefgh`;

function throttleAt(clock: ManualClock): AuthThrottle {
  return new AuthThrottle({ ...api.services, clock }, BUDGET, WINDOW_MS);
}

/** `count` random keys at once from `source`: the codes answered, sorted. */
async function flood(throttle: AuthThrottle, source: string, count: number, action: string) {
  const results = await Promise.all(
    Array.from({ length: count }, () => throttle.authenticate(source, randomKey(), { action, resource: "graphql" })),
  );
  return results.map((r) => (r.ok ? "OK" : r.error.code));
}

async function auditRows(action: string): Promise<number> {
  await api.services.auditWriter.flush();
  return stack.env.db.auditLog.count({ where: { action } });
}

const tally = (codes: string[]) => codes.reduce<Record<string, number>>((m, c) => ({ ...m, [c]: (m[c] ?? 0) + 1 }), {});

describe("failed authentication, concurrent and at the window's rollover", () => {
  it("16 unknown keys at once cost no more lookups and audit rows than the budget", async () => {
    const clock = new ManualClock(1_000_000);
    const throttle = throttleAt(clock);
    const codes = await flood(throttle, "198.51.100.1", 16, "auth.burst.concurrent");
    expect(tally(codes)).toEqual({ UNAUTHENTICATED: BUDGET, RATE_LIMITED: 16 - BUDGET });
    expect(await auditRows("auth.burst.concurrent")).toBe(BUDGET);
    // another source has its own budget
    expect(tally(await flood(throttle, "198.51.100.2", 2, "auth.burst.other"))).toEqual({ UNAUTHENTICATED: 2 });
  });

  it("after a throttled window, the next releases its budget evenly, not all at once", async () => {
    const clock = new ManualClock(2_000_000);
    const throttle = throttleAt(clock);
    const source = "198.51.100.3";
    const known = await throttle.authenticate(source, t.secret, { action: "auth.burst.rollover", resource: "x" });
    expect(known.ok).toBe(true); // remembered: served below while the source is throttled
    // window 1: the budget, then refusals (the source floods)
    const first = await flood(throttle, source, BUDGET + 3, "auth.burst.rollover");
    expect(tally(first)).toEqual({ UNAUTHENTICATED: BUDGET, RATE_LIMITED: 3 });

    // the window rolls over while 16 clients wait: one lookup, the rest refused until the next release
    clock.advance(WINDOW_MS);
    const atRollover = await throttle.authenticate(source, randomKey(), {
      action: "auth.burst.rollover",
      resource: "x",
    });
    expect(atRollover.ok).toBe(false);
    expect(!atRollover.ok && atRollover.error.code).toBe("UNAUTHENTICATED");
    const rest = await Promise.all(
      Array.from({ length: 15 }, () =>
        throttle.authenticate(source, randomKey(), { action: "auth.burst.rollover", resource: "x" }),
      ),
    );
    expect(rest.map((r) => (r.ok ? "OK" : r.error.code))).toEqual(Array(15).fill("RATE_LIMITED"));
    const retryAfterMs = !rest[0].ok ? rest[0].error.retryAfterMs : undefined;
    expect(retryAfterMs).toBe(WINDOW_MS / BUDGET); // the next release, not the window's end

    // the key that authenticated before is served from the throttled source, taking nothing
    expect((await throttle.authenticate(source, t.secret, { action: "auth.burst.rollover", resource: "x" })).ok).toBe(
      true,
    );
    expect((await throttle.authenticate(source, t.secret, { action: "auth.burst.rollover", resource: "x" })).ok).toBe(
      true,
    );

    // one more lookup per window ÷ budget; never more than the budget within the window
    let looked = 1;
    for (let step = 1; step < BUDGET; step++) {
      clock.advance(WINDOW_MS / BUDGET);
      const codes = await flood(throttle, source, 16, "auth.burst.rollover");
      expect(tally(codes)).toEqual({ UNAUTHENTICATED: 1, RATE_LIMITED: 15 });
      looked++;
    }
    expect(looked).toBe(BUDGET);
    clock.advance(WINDOW_MS / BUDGET - 1);
    expect(tally(await flood(throttle, source, 16, "auth.burst.rollover"))).toEqual({ RATE_LIMITED: 16 });
    // audit: one row per refused lookup (auth.throttled rows are their own action)
    expect(await auditRows("auth.burst.rollover")).toBe(2 * BUDGET);
  });

  it("a source's unknown keys are looked up a few at a time, not as many at once as the budget allows", async () => {
    // attack (f) as it began: 16 new keys at once were 16 concurrent PostgreSQL lookups (the
    // pool grew to its maximum: a SCRAM exchange and a backend fork per new connection)
    let inflight = 0;
    let most = 0;
    const auth = {
      ...api.services.auth,
      authenticate: async (secret: string | null) => {
        most = Math.max(most, ++inflight);
        try {
          return await api.services.auth.authenticate(secret);
        } finally {
          inflight--;
        }
      },
    } as typeof api.services.auth;
    const throttle = new AuthThrottle({ ...api.services, auth, clock: new ManualClock(5_000_000) }, 20, WINDOW_MS);
    const codes = await flood(throttle, "198.51.100.6", 16, "auth.burst.inflight");
    expect(tally(codes)).toEqual({ UNAUTHENTICATED: 16 });
    expect(most).toBe(LOOKUPS_IN_FLIGHT_PER_SOURCE);
    expect(await auditRows("auth.burst.inflight")).toBe(16);
  });

  it("a source that stopped failing gets its whole budget again", async () => {
    const clock = new ManualClock(3_000_000);
    const throttle = throttleAt(clock);
    const source = "198.51.100.4";
    expect(tally(await flood(throttle, source, BUDGET + 1, "auth.burst.quiet"))).toEqual({
      UNAUTHENTICATED: BUDGET,
      RATE_LIMITED: 1,
    });
    clock.advance(WINDOW_MS); // a window with no refusal (nothing sent)
    clock.advance(WINDOW_MS);
    expect(tally(await flood(throttle, source, BUDGET, "auth.burst.quiet"))).toEqual({ UNAUTHENTICATED: BUDGET });
  });

  it("a burst with new valid keys is never refused: one key at once shares a lookup, more keys than the budget wait their turn", async () => {
    const clock = new ManualClock(4_000_000);
    const throttle = throttleAt(clock);
    const source = "198.51.100.5";
    const one = await Promise.all(
      Array.from({ length: 40 }, () =>
        throttle.authenticate(source, t.secret, { action: "auth.burst.valid", resource: "x" }),
      ),
    );
    expect(one.every((r) => r.ok)).toBe(true);
    const others = await Promise.all(Array.from({ length: 3 * BUDGET }, () => createTenant(stack.env.db)));
    const many = await Promise.all(
      others.flatMap((o) =>
        [0, 1].map(() => throttle.authenticate(source, o.secret, { action: "auth.burst.valid", resource: "x" })),
      ),
    );
    expect(many.map((r) => (r.ok ? r.value.tenantId : "refused"))).toEqual(
      others.flatMap((o) => [o.tenantId, o.tenantId]),
    );
    // and unknown keys from that source still fill the budget as before
    expect(tally(await flood(throttle, source, BUDGET + 2, "auth.burst.valid"))).toEqual({
      UNAUTHENTICATED: BUDGET,
      RATE_LIMITED: 2,
    });
  });
});
