import { checkWindowSeconds, readLiveMetrics } from "@lite/telemetry";
import type { ApiContext } from "../context";
import { orThrow } from "../tenant/tenancy.context";
import type { TenantMetrics } from "./tenant-metrics.type";

/**
 * One tenant's live metrics over the last `windowSeconds`, summed across every API and
 * worker process (libs/telemetry live-metrics.reader.ts). The caller has checked that it
 * may see the tenant; a window out of bounds is BAD_USER_INPUT naming `windowSeconds`.
 */
export async function readTenantMetrics(
  ctx: ApiContext,
  tenantId: string,
  windowSeconds: number,
): Promise<TenantMetrics> {
  const window = await orThrow(ctx, checkWindowSeconds(windowSeconds));
  const { redis, keys, clock } = ctx.services;
  return readLiveMetrics(redis, keys, tenantId, { windowSeconds: window, nowMs: clock.nowMs() });
}
