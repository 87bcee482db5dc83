import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { ApiContext } from "../context";
import { Tenant } from "./tenant.type";
import { TenantQueue } from "./tenant-queue.type";

/**
 * `Tenant.queue`: reached only through a Tenant the caller may see (tenant(id) answers
 * NOT_FOUND for another tenant's id, tenants is ADMIN and FINANCE only), so it needs no
 * check of its own. Two Redis reads: the tenant's BullMQ job counts and its admission state.
 */
@Resolver(() => Tenant)
export class TenantQueueResolver {
  @FieldResolver(() => TenantQueue, { description: "live queue depth and admission use, for dashboards" })
  async queue(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<TenantQueue> {
    const { scheduler, admission } = ctx.services.completions;
    const [depth, usage] = await Promise.all([scheduler.queueDepth(tenant.id), admission.usage(tenant.id)]);
    return {
      waiting: depth?.waiting ?? null,
      active: depth?.active ?? null,
      concurrentRequests: usage.concurrent,
      outstandingTokens: usage.outstandingTokens,
    };
  }
}
