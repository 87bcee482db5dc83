import { Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import { findTenant } from "@lite/tenancy";
import { Allow } from "./access";
import type { ApiContext } from "../context";
import { Tenant } from "../tenant/tenant.type";
import { PrincipalType } from "./principal.type";

interface PrincipalRoot {
  role: PrincipalType["role"];
  apiKeyId: string;
  tenantId: string | null;
}

@Resolver(() => PrincipalType)
export class MeResolver {
  @Query(() => PrincipalType)
  @Allow("ADMIN", "FINANCE", "TENANT")
  me(@Ctx() ctx: ApiContext): PrincipalRoot {
    return { role: ctx.principal.role, apiKeyId: ctx.principal.apiKeyId, tenantId: ctx.principal.tenantId };
  }

  @FieldResolver(() => Tenant, { nullable: true })
  async tenant(@Root() me: PrincipalRoot, @Ctx() ctx: ApiContext): Promise<Tenant | null> {
    if (!me.tenantId) return null;
    const found = await findTenant(ctx.services.db, me.tenantId);
    return found.ok ? found.value : null;
  }
}
