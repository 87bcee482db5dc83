import { badInput, err, ok, type DomainError, type Granularity, type Meter, type Result } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";

/**
 * Usage from the UsageEvent table, over [from, to), in UTC. Buckets are date_trunc of
 * occurredAt (stored as UTC timestamps). Ranges longer than a granularity sensibly
 * covers are refused rather than answered with thousands of buckets.
 */
const DAY_MS = 24 * 3600 * 1000;
export const MAX_USAGE_RANGE_MS: Record<Granularity | "TOTAL", number> = {
  HOUR: 31 * DAY_MS,
  DAY: 3 * 366 * DAY_MS,
  MONTH: 20 * 366 * DAY_MS,
  TOTAL: 20 * 366 * DAY_MS,
};
const TRUNC: Record<Granularity, string> = { HOUR: "hour", DAY: "day", MONTH: "month" };

export interface UsageBucket {
  start: Date;
  meter: Meter;
  dimension: string | null;
  quantity: bigint;
}

export interface UsageTotal {
  meter: Meter;
  dimension: string | null;
  quantity: bigint;
}

/** BAD_USER_INPUT (field `to`) for an empty or reversed range, or one longer than the granularity allows. */
export function checkUsageRange(from: Date, to: Date, granularity: Granularity | "TOTAL"): Result<void, DomainError> {
  if (from.getTime() >= to.getTime()) return err(badInput("to", "must be after from (ranges are [from, to))"));
  if (to.getTime() - from.getTime() > MAX_USAGE_RANGE_MS[granularity]) {
    const days = Math.round(MAX_USAGE_RANGE_MS[granularity] / DAY_MS);
    return err(
      badInput("to", `a ${granularity === "TOTAL" ? "usage" : granularity} range may span at most ${days} days`),
    );
  }
  return ok(undefined);
}

const utc = (d: Date) => Prisma.sql`(${d.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;

/** A tenant's usage per (bucket start, meter, dimension), ascending. */
export async function usageBuckets(
  db: Pick<PrismaClient, "$queryRaw">,
  tenantId: string,
  from: Date,
  to: Date,
  granularity: Granularity,
): Promise<Result<UsageBucket[], DomainError>> {
  const range = checkUsageRange(from, to, granularity);
  if (!range.ok) return range;
  const unit = TRUNC[granularity];
  const rows = await db.$queryRaw<Array<{ start: string; meter: Meter; dimension: string | null; quantity: string }>>`
    SELECT to_char(date_trunc(${unit}, "occurredAt"), 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS start,
           meter::text AS meter, dimension, SUM(quantity)::text AS quantity
    FROM "UsageEvent"
    WHERE "tenantId" = ${tenantId} AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3`;
  return ok(
    rows.map((r) => ({
      start: new Date(r.start),
      meter: r.meter,
      dimension: r.dimension,
      quantity: BigInt(r.quantity),
    })),
  );
}

/** A tenant's usage per (meter, dimension) over the range. */
export async function usageTotals(
  db: Pick<PrismaClient, "$queryRaw">,
  tenantId: string,
  from: Date,
  to: Date,
): Promise<Result<UsageTotal[], DomainError>> {
  const range = checkUsageRange(from, to, "TOTAL");
  if (!range.ok) return range;
  const rows = await db.$queryRaw<Array<{ meter: Meter; dimension: string | null; quantity: string }>>`
    SELECT meter::text AS meter, dimension, SUM(quantity)::text AS quantity
    FROM "UsageEvent"
    WHERE "tenantId" = ${tenantId} AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
    GROUP BY 1, 2
    ORDER BY 1, 2`;
  return ok(rows.map((r) => ({ meter: r.meter, dimension: r.dimension, quantity: BigInt(r.quantity) })));
}
