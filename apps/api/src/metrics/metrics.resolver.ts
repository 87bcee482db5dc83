import { Arg, ID, Int, Resolver, Root, Subscription } from "type-graphql";
import { DomainError, badInput } from "@lite/core";
import type { Role } from "@lite/auth";
import { DEFAULT_WINDOW_SECONDS } from "@lite/telemetry";
import { Allow } from "../auth/access";
import { guardedSubscribe } from "../auth/subscription";
import type { ApiContext } from "../context";
import { requireTenant } from "../tenant/tenancy.context";
import { readTenantMetrics } from "./read-tenant-metrics";
import { snapshotTicker } from "./snapshot-ticker";
import { TenantMetrics } from "./tenant-metrics.type";

const TENANT_METRICS_ROLES: Role[] = ["ADMIN", "TENANT"];
/** Largest `intervalMs`, ms: a dashboard wanting less often can resubscribe. */
export const TENANT_METRICS_MAX_INTERVAL_MS = 60_000;

/** Live tenantMetrics subscriptions per WebSocket (keyed by the socket, forgotten with it). */
const liveByConnection = new WeakMap<object, number>();

interface TenantMetricsArgs {
  tenantId: string;
  intervalMs: number;
  windowSeconds: number;
}

@Resolver()
export class MetricsResolver {
  @Subscription(() => TenantMetrics, {
    description: "a tenant's live metrics, for dashboards",
    subscribe: guardedSubscribe<TenantMetricsArgs>(TENANT_METRICS_ROLES, "Subscription.tenantMetrics", startTicker),
  })
  @Allow(...TENANT_METRICS_ROLES)
  tenantMetrics(
    @Root() metrics: TenantMetrics,
    @Arg("tenantId", () => ID) _tenantId: string,
    @Arg("intervalMs", () => Int, {
      nullable: true,
      defaultValue: 1000,
      description: `ms between snapshots: TENANT_METRICS_MIN_INTERVAL_MS (default 500) to ${TENANT_METRICS_MAX_INTERVAL_MS}`,
    })
    _intervalMs: number,
    @Arg("windowSeconds", () => Int, {
      nullable: true,
      defaultValue: DEFAULT_WINDOW_SECONDS,
      description: "the sliding window each snapshot covers, seconds (5 to 300)",
    })
    _windowSeconds: number,
  ): TenantMetrics {
    return metrics;
  }
}

/**
 * Role (guardedSubscribe), then ownership and existence (another tenant's id is NOT_FOUND),
 * then the interval's bounds, then the per-connection limit; the first snapshot is read at
 * once so a bad window is refused before anything is pushed.
 */
async function startTicker(args: TenantMetricsArgs, ctx: ApiContext): Promise<AsyncIterable<TenantMetrics>> {
  await requireTenant(ctx, args.tenantId);
  const { env } = ctx.services;
  const intervalMs = args.intervalMs ?? 1000;
  if (
    !Number.isInteger(intervalMs) ||
    intervalMs < env.TENANT_METRICS_MIN_INTERVAL_MS ||
    intervalMs > TENANT_METRICS_MAX_INTERVAL_MS
  )
    throw badInput(
      "intervalMs",
      `must be from ${env.TENANT_METRICS_MIN_INTERVAL_MS} to ${TENANT_METRICS_MAX_INTERVAL_MS} ms, got ${intervalMs}`,
    );
  const windowSeconds = args.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  const read = () => readTenantMetrics(ctx, args.tenantId, windowSeconds);
  const first = await read();
  const connection = ctx.connection;
  if (connection) {
    const live = liveByConnection.get(connection) ?? 0;
    const max = env.TENANT_METRICS_SUBSCRIPTIONS_PER_CONNECTION;
    if (live >= max)
      throw new DomainError("QUOTA_EXCEEDED", `at most ${max} tenantMetrics subscriptions at once on one WebSocket`, {
        reason: "TENANT_METRICS_SUBSCRIPTIONS_PER_CONNECTION",
        retryAfterMs: intervalMs,
      });
    liveByConnection.set(connection, live + 1);
  }
  let sent = false;
  return snapshotTicker(
    intervalMs,
    async () => {
      if (sent) return read();
      sent = true;
      return first;
    },
    () => {
      if (connection) liveByConnection.set(connection, Math.max(0, (liveByConnection.get(connection) ?? 1) - 1));
    },
  );
}
