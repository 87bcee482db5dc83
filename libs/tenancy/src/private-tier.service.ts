import { badInput, err, notFound, notImplemented, type DomainError, type Result } from "@lite/core";
import type { TenancyDb } from "./tenancy.resources";

/** A tenant-private tier fine-tuned from a public one (contract: createPrivateTier). */
export interface PrivateTierInput {
  tenantId: string;
  name: string;
  /** the public tier whose experts are fine-tuned into the private tier */
  baseTierId: string;
}

/**
 * Checks the request (the tenant exists, the base tier is public and exists, the name is
 * not empty); creating the encrypted tier is not built yet, so a valid request answers
 * NOT_IMPLEMENTED. The app checks the caller owns `tenantId` first.
 */
export async function createPrivateTier(
  db: Pick<TenancyDb, "tenant" | "tier">,
  input: PrivateTierInput,
): Promise<Result<never, DomainError>> {
  const tenant = await db.tenant.findUnique({ where: { id: input.tenantId }, select: { id: true } });
  if (!tenant) return err(notFound("tenant", input.tenantId));
  const base = await db.tier.findFirst({ where: { id: input.baseTierId, ownerTenantId: null } });
  if (!base) return err(notFound("tier", input.baseTierId));
  if (input.name.trim() === "") return err(badInput("input.name", "must not be empty"));
  return err(notImplemented("createPrivateTier"));
}
