/**
 * Rating and issuance on real PostgreSQL: three price-book versions across a month boundary
 * (exact totals), issuance (frozen, idempotent, once under concurrency, only once closed),
 * late usage after issuance (an adjustment on the next month not issued yet, never dropped).
 */
import {
  createPriceBook,
  issuePeriod,
  periodEnd,
  periodInvoices,
  tenantInvoice,
  type InvoiceView,
  type PriceSpec,
} from "@lite/billing";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";
import { recordUsage } from "./usage-fixture";

let env: TestEnv;
let A: string;
let B: string;
const NOW = new Date("2024-06-15T00:00:00.000Z");

const price = (meter: PriceSpec["meter"], unitPrice: string, dimension: string | null = null): PriceSpec => ({
  meter,
  dimension,
  unitPrice,
  unit: "1 unit",
});

beforeAll(async () => {
  env = await createTestEnv();
  A = (await createTenant(env.db, { name: "acme" })).tenantId;
  B = (await createTenant(env.db, { name: "bravo" })).tenantId;
  const book = (effectiveFrom: string, prices: PriceSpec[]) =>
    createPriceBook(env.db, { currency: "USD", effectiveFrom: new Date(effectiveFrom), prices });
  await book("2024-02-15T00:00:00Z", [
    price("INPUT_TOKENS", "0.000001"),
    price("OUTPUT_TOKENS", "0.000002"),
    price("EXPERT_CALLS", "0.0000001"),
    price("EXPERT_CALLS", "0.0000003", "tiny.t1"),
  ]);
  await book("2024-03-20T12:00:00Z", [
    price("INPUT_TOKENS", "0.0000015"),
    price("OUTPUT_TOKENS", "0.000003"),
    price("EXPERT_CALLS", "0.0000002"),
  ]);
  await book("2024-04-10T00:00:00Z", [
    price("INPUT_TOKENS", "0.000001"),
    price("OUTPUT_TOKENS", "0.0000025"),
    price("TIERSET_ACTIVATIONS", "0.001", "FAST"),
  ]);
  await recordUsage(env.db, [
    { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 1_000_000, occurredAt: "2024-03-05T00:00:00Z" },
    { tenantId: A, meter: "INPUT_TOKENS", quantity: 500_000, occurredAt: "2024-03-05T00:00:00Z" },
    { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 333_333, occurredAt: "2024-03-20T11:59:59.999Z" },
    { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 1_000_001, occurredAt: "2024-03-20T12:00:00.000Z" },
    {
      tenantId: A,
      meter: "EXPERT_CALLS",
      dimension: "tiny.t1",
      quantity: 10_000_000,
      occurredAt: "2024-03-31T23:59:59.999Z",
    },
    { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 2_000_000, occurredAt: "2024-04-01T00:00:00.000Z" },
    { tenantId: A, meter: "INPUT_TOKENS", quantity: 1_234_567, occurredAt: "2024-04-09T23:59:59.999Z" },
    { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 4_000_000, occurredAt: "2024-04-10T00:00:00.000Z" },
    {
      tenantId: A,
      meter: "TIERSET_ACTIVATIONS",
      dimension: "FAST",
      quantity: 7,
      occurredAt: "2024-04-10T00:00:00.000Z",
    },
    { tenantId: B, meter: "OUTPUT_TOKENS", quantity: 10, occurredAt: "2024-03-10T00:00:00Z" },
  ]);
});

afterAll(async () => {
  await env?.close();
});

const lineShape = (i: InvoiceView) =>
  i.lines.map((l) => [l.usagePeriod, l.meter, l.dimension, l.quantity.toString(), l.unitPrice, l.amount, l.adjustment]);

async function ok<T>(p: Promise<{ ok: true; value: T } | { ok: false; error: Error }>): Promise<T> {
  const r = await p;
  if (!r.ok) throw r.error;
  return r.value;
}

describe("three price-book versions across a month boundary", () => {
  const MARCH = [
    ["2024-03", "INPUT_TOKENS", null, "500000", "0.000001", "0.50", false],
    ["2024-03", "OUTPUT_TOKENS", null, "1333333", "0.000002", "2.67", false], // 2.666666
    ["2024-03", "OUTPUT_TOKENS", null, "1000001", "0.000003", "3.00", false], // 3.000003
    ["2024-03", "EXPERT_CALLS", "tiny.t1", "10000000", "0.0000002", "2.00", false], // B2 has no t1 price: its meter price
  ];
  const APRIL = [
    ["2024-04", "INPUT_TOKENS", null, "1234567", "0.0000015", "1.85", false], // 1.8518505
    ["2024-04", "OUTPUT_TOKENS", null, "2000000", "0.000003", "6.00", false],
    ["2024-04", "OUTPUT_TOKENS", null, "4000000", "0.0000025", "10.00", false],
    ["2024-04", "TIERSET_ACTIVATIONS", "FAST", "7", "0.001", "0.01", false], // 0.007
  ];

  it("drafts rate each usage with the book in force when it occurred, to the exact cent", async () => {
    const march = await ok(tenantInvoice(env.db, A, { period: "2024-03", now: NOW }));
    expect(march).toMatchObject({
      status: "DRAFT",
      issuedAt: null,
      currency: "USD",
      tenantName: "acme",
      total: "8.17",
    });
    expect(lineShape(march)).toEqual(MARCH);
    const april = await ok(tenantInvoice(env.db, A, { period: "2024-04", now: NOW }));
    expect(lineShape(april)).toEqual(APRIL);
    expect(april.total).toBe("17.86");
  });

  it("issuing freezes the same lines and totals; every tenant with usage gets its own invoice", async () => {
    const issued = await ok(issuePeriod(env.db, "2024-03", NOW));
    expect(issued).toEqual({ period: "2024-03", issuedAt: NOW, issuedNow: true });
    const all = await ok(periodInvoices(env.db, { period: "2024-03", now: NOW }));
    expect(all.map((i) => [i.tenantId, i.status, i.total])).toEqual(
      [
        [A, "ISSUED", "8.17"],
        [B, "ISSUED", "0.00"],
      ].sort((x, y) => (x[0] < y[0] ? -1 : 1)),
    );
    const a = all.find((i) => i.tenantId === A)!;
    expect(lineShape(a)).toEqual(MARCH);
    expect(a.issuedAt).toEqual(NOW);
    expect(all.find((i) => i.tenantId === B)!.lines.map((l) => l.quantity)).toEqual([10n]);
  });
});

describe("issuance", () => {
  it("is idempotent, refused while the period is open (to the millisecond), allowed from its end", async () => {
    expect(await ok(issuePeriod(env.db, "2024-03", new Date("2024-07-01T00:00:00Z")))).toMatchObject({
      issuedNow: false,
      issuedAt: NOW,
    });
    const end = periodEnd("2024-06").getTime();
    const open = await issuePeriod(env.db, "2024-06", new Date(end - 1));
    expect(open.ok ? null : open.error).toMatchObject({ code: "BAD_USER_INPUT", field: "period" });
    expect(await env.db.invoicePeriod.findUnique({ where: { period: "2024-06" } })).toBeNull();
    const bad = await issuePeriod(env.db, "2024-13", NOW);
    expect(bad.ok ? null : bad.error.message).toBe("period: must be YYYY-MM");
  });

  it("two issuers at once store the period once", async () => {
    const [x, y] = await Promise.all([issuePeriod(env.db, "2024-02", NOW), issuePeriod(env.db, "2024-02", NOW)]);
    expect([x.ok && x.value.issuedNow, y.ok && y.value.issuedNow].sort()).toEqual([false, true]);
    expect(await env.db.invoicePeriod.count({ where: { period: "2024-02" } })).toBe(1);
  });

  it("stored invoices cannot be edited or deleted (the database drops the statements)", async () => {
    await env.db.$executeRaw`UPDATE "Invoice" SET total = 0`;
    await env.db.$executeRaw`DELETE FROM "InvoiceLine"`;
    await env.db.$executeRaw`DELETE FROM "UsageEvent" WHERE "invoicedPeriod" IS NOT NULL`;
    const a = await ok(tenantInvoice(env.db, A, { period: "2024-03", now: NOW }));
    expect(a.total).toBe("8.17");
    expect(a.lines).toHaveLength(4);
    expect(await env.db.usageEvent.count({ where: { invoicedPeriod: "2024-03" } })).toBe(6);
  });
});

describe("late usage", () => {
  const total = async () =>
    (await env.db.usageEvent.aggregate({ _sum: { quantity: true }, where: { tenantId: A } }))._sum.quantity ?? 0n;
  const billedOrDrafted = async (periods: string[]) => {
    let sum = 0n;
    for (const period of periods) {
      const inv = await ok(tenantInvoice(env.db, A, { period, now: NOW }));
      for (const l of inv.lines) sum += l.quantity;
    }
    return sum;
  };

  it("after its month was issued lands on the next month not issued yet, as an adjustment naming its month", async () => {
    const before = await ok(tenantInvoice(env.db, A, { period: "2024-03", now: NOW }));
    await recordUsage(env.db, [
      { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 5_000, occurredAt: "2024-03-15T00:00:00Z" },
    ]);
    // March stays as issued
    expect(await ok(tenantInvoice(env.db, A, { period: "2024-03", now: NOW }))).toEqual(before);
    // April's draft carries it, rated with March's book (B1, in force on March 15)
    const april = await ok(tenantInvoice(env.db, A, { period: "2024-04", now: NOW }));
    expect(lineShape(april).slice(-1)).toEqual([["2024-03", "OUTPUT_TOKENS", null, "5000", "0.000002", "0.01", true]]);
    expect(april.lines.slice(-1)[0].adjustment).toBe(true);
    expect(april.total).toBe("17.87");
    // issued with April
    await ok(issuePeriod(env.db, "2024-04", NOW));
    const issued = await ok(tenantInvoice(env.db, A, { period: "2024-04", now: NOW }));
    expect(issued.status).toBe("ISSUED");
    expect(lineShape(issued)).toEqual(lineShape(april));
  });

  it("after two months were issued lands on the first month still open, and a gap stops the run", async () => {
    await recordUsage(env.db, [
      { tenantId: A, meter: "OUTPUT_TOKENS", quantity: 100, occurredAt: "2024-03-31T00:00:00Z" },
      { tenantId: A, meter: "INPUT_TOKENS", quantity: 200, occurredAt: "2024-04-30T23:59:59.999Z" },
    ]);
    const may = await ok(tenantInvoice(env.db, A, { period: "2024-05", now: NOW }));
    expect(lineShape(may)).toEqual([
      ["2024-03", "OUTPUT_TOKENS", null, "100", "0.000003", "0.00", true],
      ["2024-04", "INPUT_TOKENS", null, "200", "0.000001", "0.00", true],
    ]);
    // May is not issued: June (open) does not take March's or April's late usage
    const june = await ok(tenantInvoice(env.db, A, { period: "2024-06", now: NOW }));
    expect(june.lines).toEqual([]);
    expect(june.total).toBe("0.00");
    // nothing dropped: issued + drafts hold every event's quantity exactly once
    expect(await billedOrDrafted(["2024-03", "2024-04", "2024-05", "2024-06"])).toBe(await total());
  });
});
