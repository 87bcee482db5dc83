import { UseMiddleware, getMetadataStorage, type MiddlewareFn } from "type-graphql";
import { forbidden, notFound } from "@lite/core";
import { actorOf, type Role } from "@lite/auth";
import { scopeOf } from "@lite/tenancy";
import type { ApiContext } from "../context";

/**
 * Authorisation, in the contract's order: the role check first (FORBIDDEN whatever the
 * arguments), then ownership (a TENANT naming another tenant's object gets NOT_FOUND,
 * exactly like a missing id). Every root field carries `@Allow(...)`; `buildApiSchema`
 * refuses to build a schema with an unguarded root field, and test/api checks the table.
 * Subscriptions: type-graphql middlewares do not run on subscribe, so their `subscribe`
 * functions call `requireRole` with the same role list.
 */
/** A resolver class (its prototype.constructor), the key type-graphql metadata uses. */
export type ResolverClass = abstract new (...args: never[]) => unknown;

const allowed = new Map<unknown, Map<string, readonly Role[]>>();

async function deny(ctx: ApiContext, action: string, resource: string, reason: string): Promise<void> {
  await ctx.services.audit.record({
    tenantId: ctx.principal.tenantId,
    actor: actorOf(ctx.principal),
    action,
    resource,
    decision: "DENY",
    reason,
  });
}

/** Throws FORBIDDEN (and audits the denial) unless the caller's role is listed. */
export async function requireRole(ctx: ApiContext, roles: readonly Role[], field: string): Promise<void> {
  if (roles.includes(ctx.principal.role)) return;
  await deny(ctx, "access.role", `field:${field}`, `ROLE ${ctx.principal.role}`);
  throw forbidden(`role ${ctx.principal.role} may not call ${field}`, "ROLE");
}

const roleGuard =
  (roles: readonly Role[]): MiddlewareFn<ApiContext> =>
  async ({ context, info }, next) => {
    await requireRole(context, roles, `${info.parentType.name}.${info.fieldName}`);
    return next();
  };

/** The roles that may call this root field. */
export function Allow(...roles: Role[]): MethodDecorator {
  const middleware = UseMiddleware(roleGuard(roles));
  return (prototype, methodName, descriptor) => {
    const target = (prototype as { constructor: ResolverClass }).constructor;
    const byMethod = allowed.get(target) ?? new Map<string, readonly Role[]>();
    byMethod.set(String(methodName), roles);
    allowed.set(target, byMethod);
    middleware(prototype, methodName, descriptor);
  };
}

/** "Query.me" → roles, for the given resolver classes; unguarded fields are listed apart. */
export function roleTable(resolvers: readonly ResolverClass[]): {
  table: Map<string, readonly Role[]>;
  unguarded: string[];
} {
  const storage = getMetadataStorage();
  const table = new Map<string, readonly Role[]>();
  const unguarded: string[] = [];
  const kinds = [
    ["Query", storage.queries],
    ["Mutation", storage.mutations],
    ["Subscription", storage.subscriptions],
  ] as const;
  for (const [type, list] of kinds) {
    for (const r of list) {
      if (!(resolvers as readonly unknown[]).includes(r.target)) continue;
      const roles = allowed.get(r.target)?.get(r.methodName);
      if (roles) table.set(`${type}.${r.schemaName}`, roles);
      else unguarded.push(`${type}.${r.schemaName}`);
    }
  }
  return { table, unguarded };
}

/** The tenant a TENANT caller is confined to; null for operators (ADMIN, FINANCE). */
export function tenantScope(ctx: ApiContext): string | null {
  return scopeOf(ctx.principal);
}

/**
 * Ownership of a tenant-scoped object: a TENANT naming another tenant's object gets the
 * same NOT_FOUND as for a missing one (the denial is audited).
 */
export async function requireOwner(
  ctx: ApiContext,
  ownerTenantId: string | null,
  what: string,
  id: string,
): Promise<void> {
  const scope = tenantScope(ctx);
  if (scope === null || scope === ownerTenantId) return;
  await deny(ctx, "access.owner", `${what}:${id}`, "NOT_OWNER");
  throw notFound(what, id);
}

/** Throws NOT_FOUND for a missing object (kept beside requireOwner so both read alike). */
export function found<T>(value: T | null | undefined, what: string, id: string): T {
  if (value === null || value === undefined) throw notFound(what, id);
  return value;
}
