import { z } from "zod";
import { METERS, type Meter } from "@lite/core";

/**
 * A billable act, as it crosses from the worker to PostgreSQL. `idempotencyKey` makes a
 * retried or replayed job count once: `${completionId}:${meter}:${dimension ?? ""}`.
 */
export { METERS, type Meter };

export const UsageEvent = z.object({
  version: z.literal(1),
  tenantId: z.string().min(1),
  completionId: z.string().min(1).nullable(),
  meter: z.enum(METERS),
  /** tier id for EXPERT_CALLS and PREFETCH_BYTES, mode for TIERSET_ACTIVATIONS, null otherwise */
  dimension: z.string().min(1).nullable(),
  /** a non-negative integer; bigint so byte meters cannot overflow */
  quantity: z.bigint().nonnegative(),
  occurredAt: z.date(),
  idempotencyKey: z.string().min(1),
});
export type UsageEvent = z.infer<typeof UsageEvent>;

export function usageIdempotencyKey(completionId: string, meter: Meter, dimension: string | null): string {
  return `${completionId}:${meter}:${dimension ?? ""}`;
}
