/**
 * Property, on real PostgreSQL: for random price books (1–3 versions inside a month, unit
 * prices with up to 12 fractional digits, some per dimension, some meters unpriced) and
 * random usage, the invoice has one line per (meter, dimension, book in force), each amount
 * is quantity × unit price rounded half-even to the cent, and the total is the sum of the
 * lines — all checked against integer arithmetic (prices scaled by 10^12), independent of
 * the decimal library the code uses. Each run uses its own month and tenant.
 */
import fc from "fast-check";
import {
  createPriceBook,
  nextPeriod,
  periodStart,
  tenantInvoice,
  type InvoiceLineView,
  type PriceSpec,
} from "@lite/billing";
import type { Meter } from "@lite/core";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";
import { recordUsage, type UsageSpec } from "./usage-fixture";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const SCALE = 10n ** 12n;
const METERS: Meter[] = ["INPUT_TOKENS", "OUTPUT_TOKENS", "EXPERT_CALLS", "TIERSET_ACTIVATIONS"];
const DIMENSIONS: Record<string, Array<string | null>> = {
  INPUT_TOKENS: [null],
  OUTPUT_TOKENS: [null],
  EXPERT_CALLS: ["tiny.t0", "tiny.t1", "tiny.t2"],
  TIERSET_ACTIVATIONS: ["FAST", "BALANCED"],
};
const MONTH_MS = 28 * 24 * 3600 * 1000; // every month has at least 28 days

/** A price: an integer count of 10^-12 units. */
const scaledPrice = fc.bigInt({ min: 0n, max: 10n ** 15n });
const priceText = (p: bigint) => {
  const s = p.toString().padStart(13, "0");
  return `${s.slice(0, -12)}.${s.slice(-12)}`;
};

const priceArb = fc.record({
  meter: fc.constantFrom(...METERS),
  /** −1: the meter's null-dimension price */
  dimIndex: fc.integer({ min: -1, max: 2 }),
  price: scaledPrice,
});
const pricesArb = fc.array(priceArb, { maxLength: 6 });
/** Later versions take effect at distinct instants inside the month (a tie within one millisecond of creation would be decided by id). */
const laterBooksArb = fc.uniqueArray(
  fc.record({ offsetMs: fc.integer({ min: 1, max: MONTH_MS - 1 }), prices: pricesArb }),
  { selector: (b) => b.offsetMs, maxLength: 2 },
);

const eventArb = fc.record({
  meter: fc.constantFrom(...METERS),
  dimIndex: fc.nat(2),
  quantity: fc.bigInt({ min: 0n, max: 10n ** 12n }),
  offsetMs: fc.integer({ min: 0, max: MONTH_MS - 1 }),
});

type BookDraw = { offsetMs: number; prices: Array<{ meter: Meter; dimIndex: number; price: bigint }> };

/** dimIndex −1 = the meter's null-dimension price; duplicates collapse to the first. */
function pricesOf(b: BookDraw): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const p of b.prices) {
    const dims = DIMENSIONS[p.meter];
    const dim = p.dimIndex < 0 ? null : dims[p.dimIndex % dims.length];
    const key = `${p.meter}|${dim ?? ""}`;
    if (!out.has(key)) out.set(key, p.price);
  }
  return out;
}

function roundHalfEvenToCents(scaled: bigint): bigint {
  const div = SCALE / 100n;
  let cents = scaled / div;
  const rest = scaled % div;
  if (rest * 2n > div || (rest * 2n === div && cents % 2n === 1n)) cents += 1n;
  return cents;
}
const centsText = (c: bigint) => {
  const s = c.toString().padStart(3, "0");
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
};

let month = "2021-01";
/** "now" for the reads: past every month the runs (and fast-check's shrinking) may use */
const LATER = new Date("2100-01-01T00:00:00Z");

it("invoice total = Σ round(quantity × unit price), each line exact, over random books and usage", async () => {
  await fc.assert(
    fc.asyncProperty(
      pricesArb,
      laterBooksArb,
      fc.array(eventArb, { minLength: 1, maxLength: 40 }),
      async (firstPrices, laterBooks, events) => {
        month = nextPeriod(month);
        const start = periodStart(month).getTime();
        const tenantId = (await createTenant(env.db)).tenantId;
        // the first book takes effect at the month's start, so no earlier run's book is in force
        const books: BookDraw[] = [{ offsetMs: 0, prices: firstPrices }, ...laterBooks];
        const stored: Array<{ id: string; at: number; prices: Map<string, bigint> }> = [];
        for (const b of books) {
          const prices = pricesOf(b);
          const spec: PriceSpec[] = [...prices].map(([key, p]) => {
            const [meter, dim] = key.split("|");
            return { meter: meter as Meter, dimension: dim || null, unitPrice: priceText(p), unit: "1 unit" };
          });
          // a book must list a price: an otherwise empty one prices INPUT_TOKENS at 0
          if (spec.length === 0) spec.push({ meter: "INPUT_TOKENS", dimension: null, unitPrice: "0", unit: "1 unit" });
          const row = await createPriceBook(env.db, {
            currency: "USD",
            effectiveFrom: new Date(start + b.offsetMs),
            prices: spec,
          });
          stored.push({ id: row.id, at: start + b.offsetMs, prices });
        }
        const usage: UsageSpec[] = events.map((e) => {
          const dims = DIMENSIONS[e.meter];
          return {
            tenantId,
            meter: e.meter,
            dimension: dims[e.dimIndex % dims.length],
            quantity: e.quantity,
            occurredAt: new Date(start + e.offsetMs),
          };
        });
        await recordUsage(env.db, usage);

        // reference: the book in force (latest effectiveFrom ≤ t, the later created on a tie)
        const expected = new Map<string, { quantity: bigint; price: bigint }>();
        for (const u of usage) {
          const t = (u.occurredAt as Date).getTime();
          const inForce = stored.filter((b) => b.at <= t).reduce((best, b) => (b.at >= best.at ? b : best));
          const price =
            inForce.prices.get(`${u.meter}|${u.dimension ?? ""}`) ?? inForce.prices.get(`${u.meter}|`) ?? 0n;
          const key = `${u.meter}|${u.dimension ?? ""}|${inForce.id}`;
          const line = expected.get(key) ?? { quantity: 0n, price };
          line.quantity += BigInt(u.quantity);
          expected.set(key, line);
        }
        const inv = await tenantInvoice(env.db, tenantId, { period: month, now: LATER });
        if (!inv.ok) throw inv.error;
        const got = new Map<string, InvoiceLineView>(
          inv.value.lines.map((l) => [`${l.meter}|${l.dimension ?? ""}|${l.priceBookId}`, l]),
        );
        expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
        let totalCents = 0n;
        let exactScaled = 0n;
        for (const [key, e] of expected) {
          const line = got.get(key)!;
          const cents = roundHalfEvenToCents(e.quantity * e.price);
          totalCents += cents;
          exactScaled += e.quantity * e.price;
          expect({ key, quantity: line.quantity, unitPrice: line.unitPrice, amount: line.amount }).toEqual({
            key,
            quantity: e.quantity,
            unitPrice: priceText(e.price).replace(/\.?0+$/, "") || "0",
            amount: centsText(cents),
          });
        }
        expect(inv.value.total).toBe(centsText(totalCents));
        // the rounding moves the total by at most half a cent per line from the exact Σ q × p
        const drift = totalCents * (SCALE / 100n) - exactScaled;
        expect((drift < 0n ? -drift : drift) * 2n <= BigInt(expected.size) * (SCALE / 100n)).toBe(true);
      },
    ),
    { numRuns: 40 },
  );
}, 120000);
