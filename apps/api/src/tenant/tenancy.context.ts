import type { Result } from "@lite/core";
import { findTenant, hiddenOf, type TenancyResources } from "@lite/tenancy";
import { requireOwner } from "../auth/access";
import type { ApiContext } from "../context";

/** The resources libs/tenancy works with, from this process's services. */
export function tenancyResources(ctx: ApiContext): TenancyResources {
  const s = ctx.services;
  return { db: s.db, audit: s.audit, auth: s.auth, scheduler: s.completions.scheduler, clock: s.clock };
}

/**
 * A library result's value. A refusal is thrown as its DomainError, which errors.ts (the one
 * mapper) turns into the GraphQL error and HTTP status; when it hides another tenant's object
 * the denial is audited first, as every ownership refusal is (auth/access.ts).
 */
export async function orThrow<T>(ctx: ApiContext, result: Result<T>): Promise<T> {
  if (result.ok) return result.value;
  const hidden = hiddenOf(result.error);
  if (hidden) await requireOwner(ctx, hidden.ownerTenantId, hidden.what, hidden.id);
  throw result.error;
}

/** A tenant the caller may see: ownership, then existence; both answer the same NOT_FOUND. */
export async function requireTenant(ctx: ApiContext, tenantId: string) {
  await requireOwner(ctx, tenantId, "tenant", tenantId);
  return orThrow(ctx, await findTenant(ctx.services.db, tenantId));
}
