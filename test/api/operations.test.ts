/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers in tests are untyped JSON */
/** Listing, usage, and tier authorisation (libs/auth resolveTierSet / smallerTierSets). */
import { newId, type TierMode } from "@lite/core";
import { AuditQueue, resolveTierSet, smallerTierSets } from "@lite/auth";
import { createTenant, gqlOk, seedModel, TEST_ADMIN_KEY, type TestEnv } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;
let audit: AuditQueue;

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db) });
  ({ env, api } = stack);
  audit = new AuditQueue({ redis: env.redis, keys: env.keys });
});

afterAll(async () => {
  await stack?.close();
});

describe("tenants", () => {
  it("pages newest first with opaque cursors and a total count", async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(
        (
          await gqlOk(
            api.url,
            TEST_ADMIN_KEY,
            `mutation { createTenant(input: { name: "page-${i}" }) { tenant { id } } }`,
          )
        ).createTenant.tenant.id,
      );
    }
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (;;) {
      const r: any = await gqlOk(
        api.url,
        TEST_ADMIN_KEY,
        "query($a: String) { tenants(first: 2, after: $a) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
        { a: after },
      );
      total = r.tenants.totalCount;
      seen.push(...r.tenants.nodes.map((n: { id: string }) => n.id));
      if (!r.tenants.pageInfo.hasNextPage) break;
      after = r.tenants.pageInfo.endCursor;
    }
    expect(total).toBe(await env.db.tenant.count());
    expect(seen).toHaveLength(total);
    expect(seen.filter((id) => made.includes(id))).toEqual([...made].reverse());
  });
});

describe("usage", () => {
  it("buckets [from, to) by hour, day and month in UTC, and totals per meter and dimension", async () => {
    const t = await createTenant(env.db);
    const other = await createTenant(env.db);
    const ev = (
      tenantId: string,
      at: string,
      meter: "OUTPUT_TOKENS" | "EXPERT_CALLS",
      quantity: bigint,
      dimension: string | null = null,
    ) => ({
      id: newId("usage"),
      idempotencyKey: newId("usage"),
      tenantId,
      meter,
      dimension,
      quantity,
      occurredAt: new Date(at),
    });
    await env.db.usageEvent.createMany({
      data: [
        ev(t.tenantId, "2026-01-01T10:15:00Z", "OUTPUT_TOKENS", 5n),
        ev(t.tenantId, "2026-01-01T10:45:00Z", "OUTPUT_TOKENS", 7n),
        ev(t.tenantId, "2026-01-01T11:00:00Z", "OUTPUT_TOKENS", 1n),
        ev(t.tenantId, "2026-01-01T11:30:00Z", "EXPERT_CALLS", 2n ** 53n + 1n, "tiny.t1"),
        ev(t.tenantId, "2026-01-02T00:00:00Z", "OUTPUT_TOKENS", 100n), // at `to`: excluded
        ev(other.tenantId, "2026-01-01T10:30:00Z", "OUTPUT_TOKENS", 1000n),
      ],
    });
    const q = (g: string) =>
      gqlOk(
        api.url,
        t.secret,
        `{ usage(tenantId: "${t.tenantId}", from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", granularity: ${g}) { start meter dimension quantity } }`,
      );
    expect((await q("HOUR")).usage).toEqual([
      { start: "2026-01-01T10:00:00.000Z", meter: "OUTPUT_TOKENS", dimension: null, quantity: "12" },
      { start: "2026-01-01T11:00:00.000Z", meter: "EXPERT_CALLS", dimension: "tiny.t1", quantity: "9007199254740993" },
      { start: "2026-01-01T11:00:00.000Z", meter: "OUTPUT_TOKENS", dimension: null, quantity: "1" },
    ]);
    expect((await q("DAY")).usage).toEqual([
      { start: "2026-01-01T00:00:00.000Z", meter: "EXPERT_CALLS", dimension: "tiny.t1", quantity: "9007199254740993" },
      { start: "2026-01-01T00:00:00.000Z", meter: "OUTPUT_TOKENS", dimension: null, quantity: "13" },
    ]);
    const month = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `{ usage(tenantId: "${t.tenantId}", from: "2025-12-01T00:00:00Z", to: "2026-02-01T00:00:00Z", granularity: MONTH) { start meter quantity } }`,
    );
    expect(month.usage).toEqual([
      { start: "2026-01-01T00:00:00.000Z", meter: "EXPERT_CALLS", quantity: "9007199254740993" },
      { start: "2026-01-01T00:00:00.000Z", meter: "OUTPUT_TOKENS", quantity: "113" },
    ]);
    const totals = await gqlOk(
      api.url,
      t.secret,
      `{ tenant(id: "${t.tenantId}") { usage(from: "2026-01-01T10:30:00Z", to: "2026-01-01T11:30:00Z") { meter dimension quantity } } }`,
    );
    expect(totals.tenant.usage).toEqual([{ meter: "OUTPUT_TOKENS", dimension: null, quantity: "8" }]);
  });
});

describe("tier sets", () => {
  const ctx = () => ({ audit, actor: "test" });

  it("modes pick granted public non-restricted tiers by placement; MAX adds restricted and own private ones", async () => {
    const t = await createTenant(env.db);
    const ids = async (mode: TierMode) => {
      const r = await resolveTierSet(env.db, t.tenantId, { mode }, ctx());
      if (!r.ok) throw r.error;
      return [r.value.tierIds, r.value.costWeight];
    };
    expect(await ids("FAST")).toEqual([["tiny.t0"], 1]);
    expect(await ids("BALANCED")).toEqual([["tiny.t0", "tiny.t1"], 2.5]);
    expect(await ids("DEEP")).toEqual([["tiny.t0", "tiny.t1", "tiny.t2"], 3.5]);
    expect(await ids("MAX")).toEqual([["tiny.t0", "tiny.t1", "tiny.t2"], 3.5]);
    await env.db.tierGrant.create({ data: { tenantId: t.tenantId, tierId: "tiny.t3" } });
    const privateId = `tier_${t.tenantId}`;
    await env.db.tier.create({
      data: {
        id: privateId,
        modelId: "tiny",
        name: "mine",
        rank: 1,
        placement: "WARM",
        groups: 1,
        expertsPerGroup: 4,
        paramBytes: 1n,
        ownerTenantId: t.tenantId,
        costWeight: 1.5,
        grants: { create: { tenantId: t.tenantId } },
      },
    });
    expect(await ids("DEEP")).toEqual([["tiny.t0", "tiny.t1", "tiny.t2"], 3.5]);
    expect(await ids("MAX")).toEqual([["tiny.t0", privateId, "tiny.t1", "tiny.t2", "tiny.t3"], 7]); // rank, then id
  });

  it("explicit tiers: ungranted → FORBIDDEN, unknown or another tenant's private → NOT_FOUND; decisions audited", async () => {
    const t = await createTenant(env.db, { tierIds: ["tiny.t0", "tiny.t1"] });
    const owner = await createTenant(env.db);
    const foreign = `tier_${owner.tenantId}`;
    await env.db.tier.create({
      data: {
        id: foreign,
        modelId: "tiny",
        name: "theirs",
        rank: 1,
        placement: "WARM",
        groups: 1,
        expertsPerGroup: 4,
        paramBytes: 1n,
        ownerTenantId: owner.tenantId,
        grants: { create: { tenantId: owner.tenantId } },
      },
    });
    const codeFor = async (tierIds: string[]) => {
      const r = await resolveTierSet(env.db, t.tenantId, { tierIds }, ctx());
      return r.ok ? r.value.tierIds : r.error.code;
    };
    expect(await codeFor(["tiny.t1", "tiny.t0"])).toEqual(["tiny.t0", "tiny.t1"]);
    expect(await codeFor(["tiny.t0", "tiny.t3"])).toBe("FORBIDDEN");
    expect(await codeFor(["tiny.t9"])).toBe("NOT_FOUND");
    expect(await codeFor([foreign])).toBe("NOT_FOUND");
    expect(await codeFor([])).toBe("BAD_USER_INPUT");
    const fast = await resolveTierSet(env.db, owner.tenantId, { tierIds: [foreign] }, ctx());
    expect(fast.ok && fast.value.mode).toBe("MAX");

    await api.services.auditWriter.flush();
    const rows = await env.db.auditLog.findMany({
      where: { tenantId: t.tenantId, action: "tier.activate" },
      orderBy: { seq: "asc" },
    });
    expect(rows.map((r) => `${r.resource}:${r.decision}`)).toEqual([
      "tier:tiny.t0:ALLOW",
      "tier:tiny.t1:ALLOW",
      "tier:tiny.t3:DENY",
      "tier:tiny.t9:DENY",
      `tier:${foreign}:DENY`,
    ]);
  });

  it("a mode with no granted tier is FORBIDDEN", async () => {
    const t = await createTenant(env.db, { tierIds: ["tiny.t1"] });
    const r = await resolveTierSet(env.db, t.tenantId, { mode: "FAST" }, ctx());
    expect(r.ok ? "ok" : [r.error.code, r.error.reason]).toEqual(["FORBIDDEN", "NO_GRANTED_TIER"]);
  });

  it("smallerTierSets steps MAX → DEEP → BALANCED → FAST, and explicit sets drop the highest rank first", async () => {
    const t = await createTenant(env.db, { tierIds: ["tiny.t0", "tiny.t1", "tiny.t2", "tiny.t3"] });
    const max = await resolveTierSet(env.db, t.tenantId, { mode: "MAX" }, ctx());
    if (!max.ok) throw max.error;
    expect(smallerTierSets(max.value)).toEqual([
      { mode: "DEEP", tierIds: ["tiny.t0", "tiny.t1", "tiny.t2"], costWeight: 3.5 },
      { mode: "BALANCED", tierIds: ["tiny.t0", "tiny.t1"], costWeight: 2.5 },
      { mode: "FAST", tierIds: ["tiny.t0"], costWeight: 1 },
    ]);
    const explicit = await resolveTierSet(env.db, t.tenantId, { tierIds: ["tiny.t3", "tiny.t0", "tiny.t2"] }, ctx());
    if (!explicit.ok) throw explicit.error;
    expect(smallerTierSets(explicit.value).map((s) => s.tierIds)).toEqual([["tiny.t0", "tiny.t2"], ["tiny.t0"]]);
    const fast = await resolveTierSet(env.db, t.tenantId, { mode: "FAST" }, ctx());
    if (!fast.ok) throw fast.error;
    expect(smallerTierSets(fast.value)).toEqual([]);
  });
});
