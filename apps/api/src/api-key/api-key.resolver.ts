import { Arg, Ctx, ID, Mutation, Resolver } from "type-graphql";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { Role } from "../common/enums";
import { ApiKey, CreatedApiKey } from "./api-key.type";
import { createApiKey, revokeApiKey } from "./api-key.service";

@Resolver()
export class ApiKeyResolver {
  @Mutation(() => CreatedApiKey)
  @Allow("ADMIN", "TENANT")
  async createApiKey(
    @Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null,
    @Arg("role", () => Role) role: Role,
    @Ctx() ctx: ApiContext,
  ): Promise<CreatedApiKey> {
    return createApiKey(ctx, tenantId, role);
  }

  @Mutation(() => ApiKey)
  @Allow("ADMIN", "TENANT")
  async revokeApiKey(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<ApiKey> {
    return revokeApiKey(ctx, id);
  }
}
