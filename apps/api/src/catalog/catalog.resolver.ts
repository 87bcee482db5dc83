import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { notImplemented } from "@lite/core";
import { createPrivateTier, listModels, listVisibleTiers } from "@lite/tenancy";
import { Allow, requireOwner, tenantScope } from "../auth/access";
import type { ApiContext } from "../context";
import { orThrow, requireTenant } from "../tenant/tenancy.context";
import { Model, Tier } from "./tier.type";
import { PrivateTierInput } from "./private-tier.input";

/**
 * The catalog. What tiers a caller may see: ADMIN and FINANCE all; a TENANT its granted tiers
 * and its own private ones (restricted tiers without a grant and other tenants' private
 * tiers are invisible) — libs/tenancy's listVisibleTiers.
 */
@Resolver()
export class CatalogResolver {
  @Query(() => [Tier], {
    description: "tiers the caller may see: all for ADMIN, granted and own private ones for TENANT",
  })
  @Allow("ADMIN", "FINANCE", "TENANT")
  async tiers(@Ctx() ctx: ApiContext): Promise<Tier[]> {
    return listVisibleTiers(ctx.services.db, tenantScope(ctx));
  }

  @Query(() => [Model])
  @Allow("ADMIN", "FINANCE", "TENANT")
  async models(@Ctx() ctx: ApiContext): Promise<Model[]> {
    return listModels(ctx.services.db);
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
    const plain = { tenantId: input.tenantId, name: input.name, baseTierId: input.baseTierId };
    return orThrow(ctx, await createPrivateTier(ctx.services.db, plain));
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
    return listVisibleTiers(ctx.services.db, tenantScope(ctx), model.id);
  }
}
