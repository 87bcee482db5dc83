import type { PrismaClient } from "@lite/db";

/**
 * The `tiny` model's catalogue rows written straight to PostgreSQL (no API, no model files),
 * for suites that need tiers to grant without a worker. Tier ids and shapes follow
 * libs/model's `tiny` preset.
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
