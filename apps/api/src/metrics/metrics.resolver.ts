import { Arg, ID, Int, Resolver, Root, Subscription } from "type-graphql";
import { notImplemented } from "@lite/core";
import type { Role } from "@lite/auth";
import { Allow } from "../auth/access";
import { guardedSubscribe } from "../auth/subscription";
import { requireTenant } from "../tenant/tenancy.context";
import { TenantMetrics } from "./tenant-metrics.type";

const TENANT_METRICS_ROLES: Role[] = ["ADMIN", "TENANT"];

@Resolver()
export class MetricsResolver {
  @Subscription(() => TenantMetrics, {
    description: "a tenant's live metrics, for dashboards",
    subscribe: guardedSubscribe<{ tenantId: string; intervalMs: number }>(
      TENANT_METRICS_ROLES,
      "Subscription.tenantMetrics",
      async (args, ctx) => {
        await requireTenant(ctx, args.tenantId);
        throw notImplemented("tenantMetrics");
      },
    ),
  })
  @Allow(...TENANT_METRICS_ROLES)
  tenantMetrics(
    @Root() metrics: TenantMetrics,
    @Arg("tenantId", () => ID) _tenantId: string,
    @Arg("intervalMs", () => Int, { nullable: true, defaultValue: 1000 }) _intervalMs: number,
  ): TenantMetrics {
    return metrics;
  }
}
