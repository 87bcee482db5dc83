import { Arg, Ctx, ID, Query, Resolver } from "type-graphql";
import { usageBuckets } from "@lite/telemetry";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { Granularity } from "../common/enums";
import { DateTimeScalar } from "../common/scalars";
import { orThrow, requireTenant } from "../tenant/tenancy.context";
import { UsageBucket } from "./usage.type";

@Resolver()
export class UsageResolver {
  @Query(() => [UsageBucket])
  @Allow("ADMIN", "FINANCE", "TENANT")
  async usage(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("from", () => DateTimeScalar) from: Date,
    @Arg("to", () => DateTimeScalar) to: Date,
    @Arg("granularity", () => Granularity, { nullable: true, defaultValue: Granularity.DAY }) granularity: Granularity,
    @Ctx() ctx: ApiContext,
  ): Promise<UsageBucket[]> {
    await requireTenant(ctx, tenantId);
    return orThrow(ctx, await usageBuckets(ctx.services.db, tenantId, from, to, granularity ?? "DAY"));
  }
}
