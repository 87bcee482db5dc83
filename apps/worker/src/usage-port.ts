import type { PrismaClient } from "@lite/db";
import type { UsagePort } from "@lite/engine";
import { recordCompletionUsage } from "@lite/telemetry";

/** The engine's usage events, written to PostgreSQL (idempotent per completion, meter and dimension). */
export function usagePort(db: Pick<PrismaClient, "usageEvent">): UsagePort {
  return {
    record: (u) => recordCompletionUsage(db, u),
  };
}
