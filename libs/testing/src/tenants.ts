import { newId, type Role } from "@lite/core";
import type { Prisma, PrismaClient } from "@lite/db";
import { generateApiKey } from "@lite/auth";

/**
 * Tenants and keys written straight to PostgreSQL (no API, no audit), as the tenancy
 * service would write them: the tenant row, its quota row (unset fields take the column
 * defaults, which a tenancy test keeps equal to DEFAULT_QUOTA), grants on every public,
 * non-restricted tier unless told otherwise, and one TENANT key.
 *
 * The tenant id can be pinned. Routing seeds derive from it (deriveRoutingSeed), so a test
 * whose outcome depends on the tokens generated (e.g. "no EOS before maxTokens") names a
 * tenant id known to give that outcome instead of drawing random tenants until one fits.
 * Each file has its own database, so pinned ids never collide between files; within a
 * file, each pinned id can be created once.
 */
export interface CreateTenantOptions {
  /** the tenant id (a `ten_` id); default a fresh newId("tenant") */
  id?: string;
  /** default `tenant-<id>` */
  name?: string;
  /** default 1 */
  weight?: number;
  /** tiers to grant; default every public, non-restricted tier (as createTenant does) */
  tierIds?: string[];
  suspended?: boolean;
  /** quota fields to set; the rest take the defaults */
  quota?: Omit<Prisma.QuotaCreateWithoutTenantInput, "updatedAt">;
}

export interface TenantWithKey {
  tenantId: string;
  apiKeyId: string;
  secret: string;
}

export async function createTenant(db: PrismaClient, opts: CreateTenantOptions = {}): Promise<TenantWithKey> {
  const tenantId = opts.id ?? newId("tenant");
  if (!tenantId.startsWith("ten_")) throw new Error(`a tenant id starts with ten_, got ${tenantId}`);
  const tierIds =
    opts.tierIds ??
    (await db.tier.findMany({ where: { ownerTenantId: null, restricted: false }, select: { id: true } })).map(
      (t) => t.id,
    );
  await db.tenant.create({
    data: {
      id: tenantId,
      name: opts.name ?? `tenant-${tenantId}`,
      weight: opts.weight ?? 1,
      suspended: opts.suspended ?? false,
      quota: { create: { ...opts.quota } },
      grants: { create: tierIds.map((tierId) => ({ tierId })) },
    },
  });
  const key = await createKey(db, "TENANT", tenantId);
  return { tenantId, ...key };
}

export async function createKey(
  db: PrismaClient,
  role: Role,
  tenantId: string | null = null,
): Promise<{ apiKeyId: string; secret: string }> {
  const key = generateApiKey();
  const apiKeyId = newId("apiKey");
  await db.apiKey.create({ data: { id: apiKeyId, hash: key.hash, prefix: key.prefix, role, tenantId } });
  return { apiKeyId, secret: key.secret };
}
