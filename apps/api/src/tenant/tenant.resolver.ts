import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import * as tenancy from "@lite/tenancy";
import { DEFAULT_WINDOW_SECONDS, usageTotals } from "@lite/telemetry";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { DateTimeScalar } from "../common/scalars";
import { ApiKey } from "../api-key/api-key.type";
import { Tier } from "../catalog/tier.type";
import { TenantMetrics } from "../metrics/tenant-metrics.type";
import { readTenantMetrics } from "../metrics/read-tenant-metrics";
import { UsageTotal } from "../usage/usage.type";
import { CreateTenantPayload, Quota, Tenant, TenantConnection } from "./tenant.type";
import { CreateTenantInput, QuotaInput, UpdateTenantInput } from "./tenant.input";
import { orThrow, requireTenant, tenancyResources } from "./tenancy.context";

/** Tenant administration: roles are checked here (`@Allow`), the work is libs/tenancy's. */
@Resolver()
export class TenantResolver {
  @Query(() => Tenant, { nullable: true })
  @Allow("ADMIN", "FINANCE", "TENANT")
  async tenant(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Tenant> {
    return requireTenant(ctx, id);
  }

  @Query(() => TenantConnection)
  @Allow("ADMIN", "FINANCE")
  async tenants(
    @Arg("first", () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: ApiContext,
  ): Promise<TenantConnection> {
    return orThrow(ctx, await tenancy.listTenants(ctx.services.db, first ?? 50, after));
  }

  @Mutation(() => CreateTenantPayload)
  @Allow("ADMIN")
  async createTenant(
    @Arg("input", () => CreateTenantInput) input: CreateTenantInput,
    @Ctx() ctx: ApiContext,
  ): Promise<CreateTenantPayload> {
    const plain = { name: input.name, weight: input.weight, quota: input.quota, tierIds: input.tierIds };
    return orThrow(ctx, await tenancy.createTenant(tenancyResources(ctx), ctx.principal, plain));
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async updateTenant(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateTenantInput) input: UpdateTenantInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    const plain = { name: input.name, weight: input.weight };
    return orThrow(ctx, await tenancy.updateTenant(tenancyResources(ctx), ctx.principal, id, plain));
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async setQuota(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("input", () => QuotaInput) input: QuotaInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return orThrow(ctx, await tenancy.setQuota(tenancyResources(ctx), ctx.principal, tenantId, { ...input }));
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async grantTier(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("tierId", () => ID) tierId: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return orThrow(ctx, await tenancy.setTierGrant(tenancyResources(ctx), ctx.principal, tenantId, tierId, true));
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async revokeTier(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("tierId", () => ID) tierId: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return orThrow(ctx, await tenancy.setTierGrant(tenancyResources(ctx), ctx.principal, tenantId, tierId, false));
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async suspendTenant(
    @Arg("id", () => ID) id: string,
    @Arg("suspended", () => Boolean) suspended: boolean,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return orThrow(ctx, await tenancy.suspendTenant(tenancyResources(ctx), ctx.principal, id, suspended));
  }
}

/** Fields of a Tenant the caller could already see (ownership was checked where it was reached). */
@Resolver(() => Tenant)
export class TenantFieldsResolver {
  @FieldResolver(() => Quota)
  async quota(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<Quota> {
    return tenancy.tenantQuota(ctx.services.db, tenant.id);
  }

  @FieldResolver(() => [Tier], { description: "tiers this tenant may activate" })
  async tiers(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<Tier[]> {
    return tenancy.grantedTiers(ctx.services.db, tenant.id);
  }

  @FieldResolver(() => [ApiKey])
  async apiKeys(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<ApiKey[]> {
    return tenancy.listApiKeys(ctx.services.db, tenant.id);
  }

  @FieldResolver(() => [UsageTotal])
  async usage(
    @Root() tenant: Tenant,
    @Arg("from", () => DateTimeScalar) from: Date,
    @Arg("to", () => DateTimeScalar) to: Date,
    @Ctx() ctx: ApiContext,
  ): Promise<UsageTotal[]> {
    return orThrow(ctx, await usageTotals(ctx.services.db, tenant.id, from, to));
  }

  @FieldResolver(() => TenantMetrics, {
    description: "live metrics over a sliding window, summed across every API and worker process",
  })
  async metrics(
    @Root() tenant: Tenant,
    @Arg("windowSeconds", () => Int, {
      nullable: true,
      defaultValue: DEFAULT_WINDOW_SECONDS,
      description: "the sliding window, seconds (5 to 300)",
    })
    windowSeconds: number,
    @Ctx() ctx: ApiContext,
  ): Promise<TenantMetrics> {
    return readTenantMetrics(ctx, tenant.id, windowSeconds ?? DEFAULT_WINDOW_SECONDS);
  }
}
