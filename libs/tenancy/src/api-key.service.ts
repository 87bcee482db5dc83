import { badInput, err, forbidden, newId, notFound, ok, type Role } from "@lite/core";
import { actorOf, generateApiKey, type Principal } from "@lite/auth";
import { hiddenNotFound, scopeOf, type TenancyDb, type TenancyResources } from "./tenancy.resources";

/**
 * API keys (contract: createApiKey, revokeApiKey). A TENANT key needs a tenant (a TENANT
 * caller may omit it: its own); ADMIN and FINANCE keys have no tenant. A TENANT may create
 * only TENANT keys. The secret is returned once; only its hash is stored. Another tenant's
 * tenant or key is NOT_FOUND with the owner in `context.hidden` (see hiddenNotFound).
 */
export interface CreateApiKeyInput {
  /** null/undefined: the caller's own tenant (TENANT callers), or none (ADMIN, FINANCE keys) */
  tenantId?: string | null;
  role: Role;
}

export async function createApiKey(r: TenancyResources, principal: Principal, input: CreateApiKeyInput) {
  const { role } = input;
  let tenantId = input.tenantId ?? null;
  if (principal.role === "TENANT") {
    if (role !== "TENANT") return err(forbidden(`a TENANT key may create TENANT keys only, not ${role}`, "ROLE"));
    tenantId = tenantId ?? principal.tenantId;
  }
  if (role === "TENANT") {
    if (tenantId === null) return err(badInput("tenantId", "a TENANT key needs a tenantId"));
    const scope = scopeOf(principal);
    if (scope !== null && scope !== tenantId) return err(hiddenNotFound("tenant", tenantId, tenantId));
    const tenant = await r.db.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
    if (!tenant) return err(notFound("tenant", tenantId));
  } else if (tenantId !== null) {
    return err(badInput("tenantId", `${role} keys belong to no tenant: pass tenantId null`));
  }
  const key = generateApiKey();
  const id = newId("apiKey", r.clock.nowMs());
  const apiKey = await r.db.apiKey.create({ data: { id, hash: key.hash, prefix: key.prefix, role, tenantId } });
  await r.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: "apikey.create",
    resource: `apikey:${id}`,
    decision: "OK",
    reason: `role ${role}`,
  });
  return ok({ apiKey, secret: key.secret });
}

/** Revocation is immediate in every API process (cache invalidation over Redis); revoking twice is harmless. */
export async function revokeApiKey(r: TenancyResources, principal: Principal, id: string) {
  const scope = scopeOf(principal);
  const existing = await r.db.apiKey.findFirst({ where: scope === null ? { id } : { id, tenantId: scope } });
  if (!existing) {
    if (scope !== null) {
      const other = await r.db.apiKey.findUnique({ where: { id }, select: { tenantId: true } });
      // An operator key (no tenant) is hidden from a tenant like any other tenant's key.
      if (other) return err(hiddenNotFound("apiKey", id, other.tenantId));
    }
    return err(notFound("apiKey", id));
  }
  const apiKey = existing.revokedAt
    ? existing
    : await r.db.apiKey.update({ where: { id }, data: { revokedAt: new Date(r.clock.nowMs()) } });
  await r.auth.invalidate({ kind: "key", apiKeyId: id });
  await r.audit.record({
    tenantId: existing.tenantId,
    actor: actorOf(principal),
    action: "apikey.revoke",
    resource: `apikey:${id}`,
    decision: "OK",
  });
  return ok(apiKey);
}

/** A tenant's keys, newest first. */
export function listApiKeys(db: Pick<TenancyDb, "apiKey">, tenantId: string) {
  return db.apiKey.findMany({ where: { tenantId }, orderBy: { id: "desc" } });
}
