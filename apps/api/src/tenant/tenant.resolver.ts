import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import { notFound, notImplemented } from "@lite/core";
import { Allow, requireOwner } from "../auth/access";
import type { ApiContext } from "../context";
import { DateTimeScalar } from "../common/scalars";
import { ApiKey } from "../api-key/api-key.type";
import { Tier } from "../catalog/tier.type";
import { TenantMetrics } from "../metrics/tenant-metrics.type";
import { UsageTotal } from "../usage/usage.type";
import { usageTotals } from "../usage/usage.service";
import { CreateTenantPayload, Quota, Tenant, TenantConnection } from "./tenant.type";
import { CreateTenantInput, QuotaInput, UpdateTenantInput } from "./tenant.input";
import { DEFAULT_QUOTA } from "./quota";
import * as tenants from "./tenant.service";

@Resolver()
export class TenantResolver {
  @Query(() => Tenant, { nullable: true })
  @Allow("ADMIN", "FINANCE", "TENANT")
  async tenant(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Tenant> {
    await requireOwner(ctx, id, "tenant", id);
    const tenant = await ctx.services.db.tenant.findUnique({ where: { id } });
    if (!tenant) throw notFound("tenant", id);
    return tenant;
  }

  @Query(() => TenantConnection)
  @Allow("ADMIN", "FINANCE")
  async tenants(
    @Arg("first", () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: ApiContext,
  ): Promise<TenantConnection> {
    return tenants.listTenants(ctx.services, first ?? 50, after);
  }

  @Mutation(() => CreateTenantPayload)
  @Allow("ADMIN")
  async createTenant(
    @Arg("input", () => CreateTenantInput) input: CreateTenantInput,
    @Ctx() ctx: ApiContext,
  ): Promise<CreateTenantPayload> {
    return tenants.createTenant(ctx.services, ctx.principal, input);
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async updateTenant(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateTenantInput) input: UpdateTenantInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return tenants.updateTenant(ctx.services, ctx.principal, id, input);
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async setQuota(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("input", () => QuotaInput) input: QuotaInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return tenants.setQuota(ctx.services, ctx.principal, tenantId, input);
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async grantTier(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("tierId", () => ID) tierId: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return tenants.setTierGrant(ctx.services, ctx.principal, tenantId, tierId, true);
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async revokeTier(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("tierId", () => ID) tierId: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return tenants.setTierGrant(ctx.services, ctx.principal, tenantId, tierId, false);
  }

  @Mutation(() => Tenant)
  @Allow("ADMIN")
  async suspendTenant(
    @Arg("id", () => ID) id: string,
    @Arg("suspended", () => Boolean) suspended: boolean,
    @Ctx() ctx: ApiContext,
  ): Promise<Tenant> {
    return tenants.suspendTenant(ctx.services, ctx.principal, id, suspended);
  }
}

/** Fields of a Tenant the caller could already see (ownership was checked where it was reached). */
@Resolver(() => Tenant)
export class TenantFieldsResolver {
  @FieldResolver(() => Quota)
  async quota(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<Quota> {
    const q = await ctx.services.db.quota.findUnique({ where: { tenantId: tenant.id } });
    return q ?? DEFAULT_QUOTA;
  }

  @FieldResolver(() => [Tier], { description: "tiers this tenant may activate" })
  async tiers(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<Tier[]> {
    return ctx.services.db.tier.findMany({
      where: { grants: { some: { tenantId: tenant.id } }, OR: [{ ownerTenantId: null }, { ownerTenantId: tenant.id }] },
      orderBy: [{ modelId: "asc" }, { rank: "asc" }, { id: "asc" }],
    });
  }

  @FieldResolver(() => [ApiKey])
  async apiKeys(@Root() tenant: Tenant, @Ctx() ctx: ApiContext): Promise<ApiKey[]> {
    return ctx.services.db.apiKey.findMany({ where: { tenantId: tenant.id }, orderBy: { id: "desc" } });
  }

  @FieldResolver(() => [UsageTotal])
  async usage(
    @Root() tenant: Tenant,
    @Arg("from", () => DateTimeScalar) from: Date,
    @Arg("to", () => DateTimeScalar) to: Date,
    @Ctx() ctx: ApiContext,
  ): Promise<UsageTotal[]> {
    return usageTotals(ctx.services.db, tenant.id, from, to);
  }

  @FieldResolver(() => TenantMetrics)
  async metrics(@Root() _tenant: Tenant): Promise<TenantMetrics> {
    throw notImplemented("Tenant.metrics");
  }
}
