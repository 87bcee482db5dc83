import type { SubscribeResolverData } from "type-graphql";
import type { Role } from "@lite/auth";
import type { ApiContext } from "../context";
import { mapResolverError } from "../errors";
import { requireRole } from "./access";

/**
 * A subscription's `subscribe` function with the role check and error mapping that
 * type-graphql middlewares give queries and mutations (they do not run on subscribe).
 * Pass the same roles as the field's `@Allow`.
 */
export function guardedSubscribe<Args = Record<string, unknown>>(
  roles: readonly Role[],
  field: string,
  body: (args: Args, ctx: ApiContext) => Promise<AsyncIterable<unknown>>,
): (data: SubscribeResolverData<unknown, Args, ApiContext>) => Promise<AsyncIterable<unknown>> {
  return async (data) => {
    const ctx = data.context;
    try {
      await requireRole(ctx, roles, field);
      return await body(data.args, ctx);
    } catch (e) {
      throw mapResolverError(e, ctx.requestId, ctx.services.log);
    }
  };
}
