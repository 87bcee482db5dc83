import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { listAuditLog } from "@lite/auth";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { orThrow } from "../tenant/tenancy.context";
import { AuditConnection } from "./audit.type";

@Resolver()
export class AuditResolver {
  @Query(() => AuditConnection)
  @Allow("ADMIN")
  async auditLog(
    @Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null,
    @Arg("first", () => Int, { nullable: true, defaultValue: 100 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: ApiContext,
  ): Promise<AuditConnection> {
    return orThrow(ctx, await listAuditLog(ctx.services.db, { tenantId, first: first ?? 100, after }));
  }
}
