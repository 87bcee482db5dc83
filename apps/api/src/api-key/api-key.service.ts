import { badInput, forbidden, newId, notFound } from "@lite/core";
import { actorOf, generateApiKey, type Role } from "@lite/auth";
import type { ApiServices } from "../services";
import { requireOwner } from "../auth/access";
import type { ApiContext } from "../context";

/**
 * createApiKey (contract): role TENANT needs a tenant (a TENANT caller may omit it: its
 * own; naming another tenant is NOT_FOUND); ADMIN and FINANCE keys have no tenant.
 * A TENANT may create only TENANT keys. The secret is returned once; only its hash stays.
 */
export async function createApiKey(ctx: ApiContext, tenantIdArg: string | null | undefined, role: Role) {
  const { services: s, principal } = ctx;
  let tenantId = tenantIdArg ?? null;
  if (principal.role === "TENANT") {
    if (role !== "TENANT") throw forbidden(`a TENANT key may create TENANT keys only, not ${role}`, "ROLE");
    tenantId = tenantId ?? principal.tenantId;
  }
  if (role === "TENANT") {
    if (tenantId === null) throw badInput("tenantId", "a TENANT key needs a tenantId");
    await requireOwner(ctx, tenantId, "tenant", tenantId);
    const tenant = await s.db.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
    if (!tenant) throw notFound("tenant", tenantId);
  } else if (tenantId !== null) {
    throw badInput("tenantId", `${role} keys belong to no tenant: pass tenantId null`);
  }
  const key = generateApiKey();
  const id = newId("apiKey", s.clock.nowMs());
  const apiKey = await s.db.apiKey.create({ data: { id, hash: key.hash, prefix: key.prefix, role, tenantId } });
  await s.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: "apikey.create",
    resource: `apikey:${id}`,
    decision: "OK",
    reason: `role ${role}`,
  });
  return { apiKey, secret: key.secret };
}

/** Revocation is immediate in every API process (cache invalidation over Redis). */
export async function revokeApiKey(ctx: ApiContext, id: string) {
  const { services: s, principal } = ctx;
  const scope = principal.role === "TENANT" ? principal.tenantId : null;
  const existing = await s.db.apiKey.findFirst({ where: scope === null ? { id } : { id, tenantId: scope } });
  if (!existing) {
    if (scope !== null) {
      const other = await s.db.apiKey.findUnique({ where: { id }, select: { tenantId: true } });
      if (other) await requireOwner(ctx, other.tenantId, "apiKey", id);
    }
    throw notFound("apiKey", id);
  }
  const apiKey = existing.revokedAt
    ? existing
    : await s.db.apiKey.update({ where: { id }, data: { revokedAt: new Date(s.clock.nowMs()) } });
  await invalidateKey(s, id);
  await s.audit.record({
    tenantId: existing.tenantId,
    actor: actorOf(principal),
    action: "apikey.revoke",
    resource: `apikey:${id}`,
    decision: "OK",
  });
  return apiKey;
}

async function invalidateKey(s: ApiServices, apiKeyId: string): Promise<void> {
  await s.auth.invalidate({ kind: "key", apiKeyId });
}
