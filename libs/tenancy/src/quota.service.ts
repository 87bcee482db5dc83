import { err, notFound, ok } from "@lite/core";
import { actorOf, type Principal } from "@lite/auth";
import { DEFAULT_QUOTA, effectiveQuota, validateQuota, type QuotaInput } from "./quota";
import { invalidateTenantCaches, type TenancyDb, type TenancyResources } from "./tenancy.resources";

/** Changes the given quota fields (the others keep their value, or the default for a tenant without a row); audited. */
export async function setQuota(r: TenancyResources, principal: Principal, tenantId: string, input: QuotaInput) {
  const patch = validateQuota(input, "input");
  if (!patch.ok) return patch;
  const tenant = await r.db.tenant.findUnique({ where: { id: tenantId } });
  if (!tenant) return err(notFound("tenant", tenantId));
  await r.db.quota.upsert({
    where: { tenantId },
    create: { tenantId, ...DEFAULT_QUOTA, ...patch.value },
    update: patch.value,
  });
  await invalidateTenantCaches(r, tenantId);
  await r.audit.record({
    tenantId,
    actor: actorOf(principal),
    action: "quota.set",
    resource: `tenant:${tenantId}`,
    decision: "OK",
    reason: Object.keys(patch.value).join(",") || "no change",
  });
  return ok(tenant);
}

/** The quota in force for a tenant: its row, else DEFAULT_QUOTA. */
export async function tenantQuota(db: Pick<TenancyDb, "quota">, tenantId: string) {
  return effectiveQuota(await db.quota.findUnique({ where: { tenantId } }));
}
