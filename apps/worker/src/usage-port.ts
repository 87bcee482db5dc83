import type { PrefetchUsageBook } from "@lite/cache";
import type { PrismaClient } from "@lite/db";
import type { UsagePort } from "@lite/engine";
import { recordCompletionUsage } from "@lite/telemetry";

/**
 * The engine's usage events, written to PostgreSQL (idempotent per completion, meter and
 * dimension), with the completion's PREFETCH_BYTES per tier from the expert cache's
 * prefetcher (bytes read on its tenant's behalf in this worker): written in the same
 * statement, so a retried or replayed finalisation counts them once.
 */
export function usagePort(db: Pick<PrismaClient, "$executeRaw">, prefetch?: PrefetchUsageBook): UsagePort {
  return {
    record: async (u) => {
      const prefetchBytesByTier = prefetch?.bytesOf(u.tenantId, u.completionId) ?? {};
      const written = await recordCompletionUsage(db, { ...u, prefetchBytesByTier });
      prefetch?.settle(u.tenantId, u.completionId);
      return written;
    },
  };
}

/**
 * BENCHMARK BASELINE (BENCHMARK_BASELINE_SKIP_USAGE=true), never in production: writes no
 * usage event, so nothing is billed. The prefetch bytes held for the completion are dropped
 * as a recorded one's are (the book does not grow).
 */
export function skippedUsagePort(prefetch?: PrefetchUsageBook): UsagePort {
  return {
    record: async (u) => {
      prefetch?.settle(u.tenantId, u.completionId);
      return 0;
    },
  };
}
