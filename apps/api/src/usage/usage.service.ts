import { badInput } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";
import type { Granularity, Meter } from "../common/enums";

/**
 * Usage from the UsageEvent table, over [from, to), in UTC. Buckets are date_trunc of
 * occurredAt (stored as UTC timestamps). Ranges longer than a granularity sensibly
 * covers are refused rather than answered with thousands of buckets.
 */
const DAY_MS = 24 * 3600 * 1000;
export const MAX_RANGE_MS: Record<Granularity | "TOTAL", number> = {
  HOUR: 31 * DAY_MS,
  DAY: 3 * 366 * DAY_MS,
  MONTH: 20 * 366 * DAY_MS,
  TOTAL: 20 * 366 * DAY_MS,
};
const TRUNC: Record<Granularity, string> = { HOUR: "hour", DAY: "day", MONTH: "month" };

export function checkRange(from: Date, to: Date, granularity: Granularity | "TOTAL"): void {
  if (from.getTime() >= to.getTime()) throw badInput("to", "must be after from (ranges are [from, to))");
  if (to.getTime() - from.getTime() > MAX_RANGE_MS[granularity]) {
    const days = Math.round(MAX_RANGE_MS[granularity] / DAY_MS);
    throw badInput("to", `a ${granularity === "TOTAL" ? "usage" : granularity} range may span at most ${days} days`);
  }
}

const utc = (d: Date) => Prisma.sql`(${d.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;

export async function usageBuckets(db: PrismaClient, tenantId: string, from: Date, to: Date, granularity: Granularity) {
  checkRange(from, to, granularity);
  const unit = TRUNC[granularity];
  const rows = await db.$queryRaw<Array<{ start: string; meter: Meter; dimension: string | null; quantity: string }>>`
    SELECT to_char(date_trunc(${unit}, "occurredAt"), 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS start,
           meter::text AS meter, dimension, SUM(quantity)::text AS quantity
    FROM "UsageEvent"
    WHERE "tenantId" = ${tenantId} AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3`;
  return rows.map((r) => ({
    start: new Date(r.start),
    meter: r.meter,
    dimension: r.dimension,
    quantity: BigInt(r.quantity),
  }));
}

export async function usageTotals(db: PrismaClient, tenantId: string, from: Date, to: Date) {
  checkRange(from, to, "TOTAL");
  const rows = await db.$queryRaw<Array<{ meter: Meter; dimension: string | null; quantity: string }>>`
    SELECT meter::text AS meter, dimension, SUM(quantity)::text AS quantity
    FROM "UsageEvent"
    WHERE "tenantId" = ${tenantId} AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
    GROUP BY 1, 2
    ORDER BY 1, 2`;
  return rows.map((r) => ({ meter: r.meter, dimension: r.dimension, quantity: BigInt(r.quantity) }));
}
