import { METERS, type Meter } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";
import { booksForRange, ratingSpans, unitPriceOf, type RatingSpan } from "./price-schedule";

/**
 * Rating: usage events → priced quantities. Events are summed per (tenant, month they
 * occurred in, meter, dimension, price book), each at the unit price of the book in force
 * when it occurred (price-schedule.ts). Quantities are summed in PostgreSQL (NUMERIC, no
 * overflow) and prices stay decimal strings: no float ever holds money.
 */
export interface RatedLine {
  tenantId: string;
  /** the month the usage occurred in (YYYY-MM) */
  usagePeriod: string;
  meter: Meter;
  dimension: string | null;
  /** the book in force when the usage occurred; null before any book (rated at 0) */
  priceBookId: string | null;
  /** that book's currency */
  currency: string | null;
  quantity: bigint;
  /** exact decimal string; "0" when the book does not price the meter */
  unitPrice: string;
  /** the start of the earliest span the line sums (orders lines) */
  from: Date;
}

/** Which events to rate: the unbilled ones (a draft), or those an issuance just marked. */
export type UsageSelection = { unbilled: true; tenantId?: string } | { unbilled: false; billedIn: string };

type Db = Pick<PrismaClient, "$queryRaw" | "priceBook">;

/** A timestamp parameter comparable with the UTC `TIMESTAMP(3)` columns (as libs/telemetry queries do). */
const utc = (d: Date) => Prisma.sql`(${d.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;

interface UsageRow {
  tenantId: string;
  span: number;
  meter: Meter;
  dimension: string | null;
  quantity: string;
}

async function usageBySpan(db: Db, spans: RatingSpan[], from: Date, to: Date, sel: UsageSelection) {
  const values = Prisma.join(spans.map((s) => Prisma.sql`(${s.index}::int, ${utc(s.from)}, ${utc(s.to)})`));
  const which = sel.unbilled
    ? Prisma.sql`u."invoicedPeriod" IS NULL`
    : Prisma.sql`u."invoicedPeriod" = ${sel.billedIn}`;
  const tenant = sel.unbilled && sel.tenantId ? Prisma.sql`AND u."tenantId" = ${sel.tenantId}` : Prisma.empty;
  return db.$queryRaw<UsageRow[]>`
    SELECT u."tenantId" AS "tenantId", s.idx AS span, u.meter::text AS meter, u.dimension AS dimension,
           SUM(u.quantity)::text AS quantity
    FROM "UsageEvent" u
    JOIN (VALUES ${values}) AS s(idx, lo, hi) ON u."occurredAt" >= s.lo AND u."occurredAt" < s.hi
    WHERE ${which} ${tenant} AND u."occurredAt" >= ${utc(from)} AND u."occurredAt" < ${utc(to)}
    GROUP BY 1, 2, 3, 4`;
}

function lineKey(tenantId: string, span: RatingSpan, meter: Meter, dimension: string | null): string {
  return [tenantId, span.usagePeriod, meter, dimension ?? "\u0000", span.book?.id ?? ""].join("\u0001");
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Usage lines first, adjustments (earlier months) after; then month, meter, dimension (none first), book. */
export function compareLines(period: string) {
  const meterRank = (m: Meter) => METERS.indexOf(m);
  return (a: RatedLine, b: RatedLine): number =>
    Number(a.usagePeriod !== period) - Number(b.usagePeriod !== period) ||
    byText(a.usagePeriod, b.usagePeriod) ||
    meterRank(a.meter) - meterRank(b.meter) ||
    byText(a.dimension ?? "", b.dimension ?? "") ||
    a.from.getTime() - b.from.getTime();
}

/**
 * The rated lines of the events in [from, to) chosen by `selection`, per tenant, each
 * tenant's lines in invoice order for `period`.
 */
export async function rateUsage(
  db: Db,
  period: string,
  from: Date,
  to: Date,
  selection: UsageSelection,
): Promise<Map<string, RatedLine[]>> {
  const spans = ratingSpans(await booksForRange(db, from, to), from, to);
  const rows = await usageBySpan(db, spans, from, to, selection);
  const lines = new Map<string, RatedLine>();
  for (const r of rows) {
    const span = spans[r.span];
    const key = lineKey(r.tenantId, span, r.meter, r.dimension);
    const known = lines.get(key);
    if (known) {
      known.quantity += BigInt(r.quantity);
      if (span.from.getTime() < known.from.getTime()) known.from = span.from;
      continue;
    }
    lines.set(key, {
      tenantId: r.tenantId,
      usagePeriod: span.usagePeriod,
      meter: r.meter,
      dimension: r.dimension,
      priceBookId: span.book?.id ?? null,
      currency: span.book?.currency ?? null,
      quantity: BigInt(r.quantity),
      unitPrice: unitPriceOf(span.book, r.meter, r.dimension) ?? "0",
      from: span.from,
    });
  }
  const byTenant = new Map<string, RatedLine[]>();
  for (const line of lines.values()) {
    const list = byTenant.get(line.tenantId) ?? [];
    list.push(line);
    byTenant.set(line.tenantId, list);
  }
  for (const list of byTenant.values()) list.sort(compareLines(period));
  return byTenant;
}
