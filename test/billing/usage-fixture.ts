import type { Meter } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { usageIdempotencyKey, writeUsageEvents } from "@lite/telemetry";

/**
 * Usage written the way the worker writes it (libs/telemetry writeUsageEvents: one event per
 * completion, meter and dimension, idempotent), for billing suites that need usage at
 * chosen instants without running completions. Each call names its own completion id.
 */
export interface UsageSpec {
  tenantId: string;
  meter: Meter;
  dimension?: string | null;
  quantity: bigint | number;
  occurredAt: string | Date;
  completionId?: string;
}

let seq = 0;

export async function recordUsage(db: PrismaClient, specs: UsageSpec[]): Promise<number> {
  return writeUsageEvents(
    db,
    specs.map((s) => {
      const completionId = s.completionId ?? `cmp_fixture${String(++seq).padStart(8, "0")}`;
      const dimension = s.dimension ?? null;
      return {
        version: 1 as const,
        tenantId: s.tenantId,
        completionId,
        meter: s.meter,
        dimension,
        quantity: BigInt(s.quantity),
        occurredAt: new Date(s.occurredAt),
        idempotencyKey: usageIdempotencyKey(completionId, s.meter, dimension),
      };
    }),
  );
}
