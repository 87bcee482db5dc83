import { newId, type Role } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { generateApiKey } from "@lite/auth";

/**
 * Test fixtures written straight to PostgreSQL (no API): the `tiny` model's catalogue
 * rows, and tenants with keys. Tier ids and shapes follow libs/model's `tiny` preset.
 */
export const TINY_TIERS = [
  {
    id: "tiny.t0",
    name: "hot",
    rank: 0,
    placement: "HOT",
    groups: 2,
    expertsPerGroup: 4,
    restricted: false,
    costWeight: 1,
  },
  {
    id: "tiny.t1",
    name: "warm",
    rank: 1,
    placement: "WARM",
    groups: 2,
    expertsPerGroup: 4,
    restricted: false,
    costWeight: 1.5,
  },
  {
    id: "tiny.t2",
    name: "cold",
    rank: 2,
    placement: "COLD",
    groups: 2,
    expertsPerGroup: 4,
    restricted: false,
    costWeight: 1,
  },
  {
    id: "tiny.t3",
    name: "restricted",
    rank: 3,
    placement: "COLD",
    groups: 1,
    expertsPerGroup: 4,
    restricted: true,
    costWeight: 2,
  },
] as const;

export async function seedModel(
  db: PrismaClient,
  opts: { isDefault?: boolean } = {},
): Promise<{ modelId: string; tierIds: string[] }> {
  await db.model.upsert({
    where: { id: "tiny" },
    create: { id: "tiny", name: "tiny", manifestSha256: "0".repeat(64), isDefault: opts.isDefault ?? true },
    update: {},
  });
  for (const t of TINY_TIERS) {
    await db.tier.upsert({
      where: { id: t.id },
      create: { ...t, modelId: "tiny", paramBytes: BigInt(t.groups * t.expertsPerGroup) * 16384n },
      update: {},
    });
  }
  return { modelId: "tiny", tierIds: TINY_TIERS.map((t) => t.id) };
}

export interface TenantWithKey {
  tenantId: string;
  apiKeyId: string;
  secret: string;
}

export interface CreateTenantOptions {
  name?: string;
  weight?: number;
  /** tiers to grant; default every public, non-restricted tier (as createTenant does) */
  tierIds?: string[];
  suspended?: boolean;
}

export async function createTenantWithKey(db: PrismaClient, opts: CreateTenantOptions = {}): Promise<TenantWithKey> {
  const tenantId = newId("tenant");
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
      quota: { create: {} },
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
