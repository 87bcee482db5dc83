import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { badInput, notFound, notImplemented } from "@lite/core";
import type { Prisma } from "@lite/db";
import { Allow, requireOwner, tenantScope } from "../auth/access";
import type { ApiContext } from "../context";
import { Model, Tier } from "./tier.type";
import { PrivateTierInput } from "./private-tier.input";

/**
 * What tiers a caller may see: ADMIN and FINANCE all; a TENANT its granted tiers and its
 * own private ones (restricted tiers without a grant and other tenants' private tiers
 * are invisible).
 */
export function visibleTiers(ctx: ApiContext): Prisma.TierWhereInput {
  const scope = tenantScope(ctx);
  if (scope === null) return {};
  return { OR: [{ ownerTenantId: scope }, { ownerTenantId: null, grants: { some: { tenantId: scope } } }] };
}

const TIER_ORDER = [{ modelId: "asc" as const }, { rank: "asc" as const }, { id: "asc" as const }];

@Resolver()
export class CatalogResolver {
  @Query(() => [Tier], {
    description: "tiers the caller may see: all for ADMIN, granted and own private ones for TENANT",
  })
  @Allow("ADMIN", "FINANCE", "TENANT")
  async tiers(@Ctx() ctx: ApiContext): Promise<Tier[]> {
    return ctx.services.db.tier.findMany({ where: visibleTiers(ctx), orderBy: TIER_ORDER });
  }

  @Query(() => [Model])
  @Allow("ADMIN", "FINANCE", "TENANT")
  async models(@Ctx() ctx: ApiContext): Promise<Model[]> {
    return ctx.services.db.model.findMany({ orderBy: [{ isDefault: "desc" }, { name: "asc" }] });
  }

  @Mutation(() => Tier, {
    description: "derive a tenant-private fine-tuned tier, stored encrypted with that tenant's key",
  })
  @Allow("ADMIN", "TENANT")
  async createPrivateTier(
    @Arg("input", () => PrivateTierInput) input: PrivateTierInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Tier> {
    await requireOwner(ctx, input.tenantId, "tenant", input.tenantId);
    const tenant = await ctx.services.db.tenant.findUnique({ where: { id: input.tenantId }, select: { id: true } });
    if (!tenant) throw notFound("tenant", input.tenantId);
    const base = await ctx.services.db.tier.findFirst({ where: { id: input.baseTierId, ownerTenantId: null } });
    if (!base) throw notFound("tier", input.baseTierId);
    if (input.name.trim() === "") throw badInput("input.name", "must not be empty");
    throw notImplemented("createPrivateTier");
  }

  @Mutation(() => Boolean, { description: "re-wrap the tenant's data keys under a new key version" })
  @Allow("ADMIN", "TENANT")
  async rotateTenantKey(@Arg("tenantId", () => ID) tenantId: string, @Ctx() ctx: ApiContext): Promise<boolean> {
    await requireTenant(ctx, tenantId);
    throw notImplemented("rotateTenantKey");
  }

  @Mutation(() => Boolean, {
    description: "crypto-shred: destroy the tenant's keys so its private tiers can never be decrypted again",
  })
  @Allow("ADMIN", "TENANT")
  async destroyTenantKeys(@Arg("tenantId", () => ID) tenantId: string, @Ctx() ctx: ApiContext): Promise<boolean> {
    await requireTenant(ctx, tenantId);
    throw notImplemented("destroyTenantKeys");
  }
}

@Resolver(() => Model)
export class ModelFieldsResolver {
  @FieldResolver(() => [Tier])
  async tiers(@Root() model: Model, @Ctx() ctx: ApiContext): Promise<Tier[]> {
    return ctx.services.db.tier.findMany({ where: { modelId: model.id, ...visibleTiers(ctx) }, orderBy: TIER_ORDER });
  }
}

/** Ownership, then existence: both answer the same NOT_FOUND. */
export async function requireTenant(ctx: ApiContext, tenantId: string) {
  await requireOwner(ctx, tenantId, "tenant", tenantId);
  const tenant = await ctx.services.db.tenant.findUnique({ where: { id: tenantId } });
  if (!tenant) throw notFound("tenant", tenantId);
  return tenant;
}
