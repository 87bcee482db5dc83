import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { badInput } from "@lite/core";
import { checkFirst, decodeCursor, encodeCursor } from "@lite/db";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
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
    const take = checkFirst(first ?? 100);
    let before: bigint | undefined;
    if (after) {
      const raw = decodeCursor(after);
      if (!/^\d+$/.test(raw)) throw badInput("after", "malformed cursor");
      before = BigInt(raw);
    }
    const rows = await ctx.services.db.auditLog.findMany({
      where: { ...(tenantId ? { tenantId } : {}), ...(before !== undefined ? { seq: { lt: before } } : {}) },
      orderBy: { seq: "desc" },
      take: take + 1,
    });
    const nodes = rows.slice(0, take);
    const last = nodes[nodes.length - 1];
    return {
      nodes,
      pageInfo: { hasNextPage: rows.length > take, endCursor: last ? encodeCursor(last.seq.toString()) : null },
    };
  }
}
