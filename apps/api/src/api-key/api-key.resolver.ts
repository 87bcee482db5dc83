import { Arg, Ctx, ID, Mutation, Resolver } from "type-graphql";
import { createApiKey, revokeApiKey } from "@lite/tenancy";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { Role } from "../common/enums";
import { orThrow, tenancyResources } from "../tenant/tenancy.context";
import { ApiKey, CreatedApiKey } from "./api-key.type";

/** API keys: roles are checked here (`@Allow`), the rules are libs/tenancy's. */
@Resolver()
export class ApiKeyResolver {
  @Mutation(() => CreatedApiKey)
  @Allow("ADMIN", "TENANT")
  async createApiKey(
    @Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null,
    @Arg("role", () => Role) role: Role,
    @Ctx() ctx: ApiContext,
  ): Promise<CreatedApiKey> {
    return orThrow(ctx, await createApiKey(tenancyResources(ctx), ctx.principal, { tenantId, role }));
  }

  @Mutation(() => ApiKey)
  @Allow("ADMIN", "TENANT")
  async revokeApiKey(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<ApiKey> {
    return orThrow(ctx, await revokeApiKey(tenancyResources(ctx), ctx.principal, id));
  }
}
