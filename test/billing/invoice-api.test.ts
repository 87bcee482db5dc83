/**
 * invoice and invoices over GraphQL: roles and ownership (a tenant sees only its own
 * invoice, another tenant's is NOT_FOUND exactly as a missing one, `invoices` is FORBIDDEN
 * to tenants), drafts until the first operator read of a closed month issues it (audited),
 * late usage as an adjustment on the next month, and the period's limits.
 */
import { nextPeriod, periodOf, periodStart, previousPeriod } from "@lite/billing";
import { codeOf, createKey, gql, TEST_ADMIN_KEY, type GqlResponse } from "@lite/testing";
import { startStack, type TestStack } from "../support/stack";
import { recordUsage } from "./usage-fixture";

let stack: TestStack;
let A: { tenantId: string; secret: string };
let B: { tenantId: string; secret: string };
let finance: string;

const CURRENT = periodOf(new Date());
const P2 = previousPeriod(CURRENT);
const P1 = previousPeriod(P2);
const at = (period: string, day: number) => new Date(periodStart(period).getTime() + (day - 1) * 86400_000);

const INVOICE = `query($t: ID!, $p: String!) { invoice(tenantId: $t, period: $p) {
  tenantId tenantName period currency status issuedAt total
  lines { meter dimension quantity unitPrice amount usagePeriod adjustment priceBookId } } }`;
const INVOICES = `query($p: String!) { invoices(period: $p) { tenantId status total lines { quantity amount adjustment } } }`;

type Line = {
  meter: string;
  quantity: string;
  unitPrice: string;
  amount: string;
  usagePeriod: string;
  adjustment: boolean;
};
type Inv = {
  tenantId: string;
  tenantName: string;
  status: string;
  issuedAt: string | null;
  total: string;
  lines: Line[];
};

const invoice = (key: string, t: string, p: string) => gql<{ invoice: Inv }>(stack.api.url, key, INVOICE, { t, p });
const invoices = (key: string, p: string) => gql<{ invoices: Inv[] }>(stack.api.url, key, INVOICES, { p });
function data<T>(r: GqlResponse<T>): T {
  if (r.errors?.length) throw new Error(JSON.stringify(r.errors));
  return r.data as T;
}

beforeAll(async () => {
  stack = await startStack();
  A = await stack.tenant({ name: "alpha" });
  B = await stack.tenant({ name: "beta" });
  finance = (await createKey(stack.env.db, "FINANCE")).secret;
  const book = await gql(
    stack.api.url,
    finance,
    `mutation($from: DateTime!) { setPriceBook(input: { currency: "USD", effectiveFrom: $from, prices: [
      { meter: OUTPUT_TOKENS, unitPrice: "0.000002", unit: "1 token" },
      { meter: INPUT_TOKENS, unitPrice: "0.000001", unit: "1 token" }] }) { id } }`,
    { from: periodStart(P1).toISOString() },
  );
  data(book);
  await recordUsage(stack.env.db, [
    { tenantId: A.tenantId, meter: "OUTPUT_TOKENS", quantity: 1_500_000, occurredAt: at(P1, 3) },
    { tenantId: A.tenantId, meter: "INPUT_TOKENS", quantity: 2_345, occurredAt: at(P1, 4) },
    { tenantId: B.tenantId, meter: "OUTPUT_TOKENS", quantity: 7_000_000, occurredAt: at(P1, 5) },
  ]);
}, 60000);

afterAll(async () => {
  await stack?.close();
});

describe("a tenant", () => {
  it("reads its own invoice (a draft: tenants never issue), with lines, unit prices and exact amounts", async () => {
    const inv = data(await invoice(A.secret, A.tenantId, P1)).invoice;
    expect(inv).toMatchObject({
      tenantId: A.tenantId,
      tenantName: "alpha",
      status: "DRAFT",
      issuedAt: null,
      total: "3.00",
    });
    expect(inv.lines.map((l) => [l.meter, l.quantity, l.unitPrice, l.amount, l.adjustment])).toEqual([
      ["INPUT_TOKENS", "2345", "0.000001", "0.00", false],
      ["OUTPUT_TOKENS", "1500000", "0.000002", "3.00", false],
    ]);
    expect(await stack.env.db.invoicePeriod.count()).toBe(0);
  });

  it("gets NOT_FOUND for another tenant's invoice, exactly as for a tenant that does not exist", async () => {
    const other = await invoice(A.secret, B.tenantId, P1);
    const missing = await invoice(A.secret, "ten_0000000000000000000000nope", P1);
    expect([other.status, codeOf(other), other.data]).toEqual([200, "NOT_FOUND", null]);
    expect(other.errors?.[0].message.replace(B.tenantId, "<id>")).toBe(
      missing.errors?.[0].message.replace("ten_0000000000000000000000nope", "<id>"),
    );
  });

  it("may not list invoices (FORBIDDEN), whatever the period", async () => {
    for (const p of [P1, "bogus"]) {
      const r = await invoices(A.secret, p);
      expect([r.status, codeOf(r)]).toEqual([403, "FORBIDDEN"]);
    }
  });
});

describe("finance", () => {
  it("issues a closed month by reading it: every tenant with usage, each with only its own lines; audited once", async () => {
    const list = data(await invoices(finance, P1)).invoices;
    expect(list.map((i) => [i.tenantId, i.status, i.total]).sort()).toEqual(
      [
        [A.tenantId, "ISSUED", "3.00"],
        [B.tenantId, "ISSUED", "14.00"],
      ].sort(),
    );
    expect(list.find((i) => i.tenantId === B.tenantId)!.lines.map((l) => l.quantity)).toEqual(["7000000"]);
    // the tenant now reads the issued invoice, the same one
    const own = data(await invoice(A.secret, A.tenantId, P1)).invoice;
    expect(own.status).toBe("ISSUED");
    expect(own.issuedAt).not.toBeNull();
    // ADMIN reads it too; nothing is issued twice
    expect(data(await invoice(TEST_ADMIN_KEY, A.tenantId, P1)).invoice).toEqual(own);
    await stack.api.services.auditWriter.flush();
    const audits = await stack.env.db.auditLog.findMany({ where: { action: "invoices.issue" } });
    expect(audits.map((a) => [a.resource, a.decision])).toEqual([[`period:${P1}`, "OK"]]);
  });

  it("late usage of an issued month: the issued invoice stays, the next month shows an adjustment naming it", async () => {
    const before = data(await invoice(finance, A.tenantId, P1)).invoice;
    await recordUsage(stack.env.db, [
      { tenantId: A.tenantId, meter: "OUTPUT_TOKENS", quantity: 250_000, occurredAt: at(P1, 28) },
    ]);
    expect(data(await invoice(finance, A.tenantId, P1)).invoice).toEqual(before);
    const draft = data(await invoice(A.secret, A.tenantId, P2)).invoice;
    expect(draft.status).toBe("DRAFT");
    expect(draft.lines).toEqual([
      expect.objectContaining({ usagePeriod: P1, adjustment: true, quantity: "250000", amount: "0.50" }),
    ]);
    // B's view of P2 shows nothing of A's
    expect(data(await invoice(B.secret, B.tenantId, P2)).invoice.lines).toEqual([]);
    // finance's read issues P2 with the adjustment in it
    const issued = data(await invoice(finance, A.tenantId, P2)).invoice;
    expect(issued).toMatchObject({ status: "ISSUED", total: "0.50" });
    expect(issued.lines).toEqual(draft.lines);
  });
});

describe("the period argument", () => {
  it.each([
    ["2020-01", null], // the earliest
    ["2019-12", "period: must be 2020-01 or later"],
    [CURRENT, null], // the month in progress: a draft, even for finance
    [nextPeriod(CURRENT), `period: must not be after the month in progress (${CURRENT})`],
    ["2026-1", "period: must be YYYY-MM"],
    ["2026-13", "period: must be YYYY-MM"],
  ])("%s", async (period, problem) => {
    for (const [key, fetch] of [
      [finance, () => invoice(finance, A.tenantId, period)],
      [finance, () => invoices(finance, period)],
      [A.secret, () => invoice(A.secret, A.tenantId, period)],
    ] as const) {
      const r = await fetch();
      if (problem === null) {
        expect({ key, errors: r.errors }).toEqual({ key, errors: undefined });
      } else {
        expect([r.status, codeOf(r), r.errors?.[0].message, r.errors?.[0].extensions?.field]).toEqual([
          400,
          "BAD_USER_INPUT",
          problem,
          "period",
        ]);
      }
    }
    if (period === CURRENT) {
      const inv = data(await invoice(finance, A.tenantId, CURRENT)).invoice;
      expect(inv.status).toBe("DRAFT");
    }
  });
});
