import { newId } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { hashApiKey } from "./api-key";

export const MIN_ADMIN_KEY_CHARS = 16;

/**
 * Makes sure the bootstrap operator key (ADMIN_API_KEY) exists, stored hashed. Idempotent
 * (and safe when several API processes start at once); a key revoked earlier stays revoked.
 * Only 4 characters are kept for display: an operator-chosen key may be as short as 16.
 * Returns the key's id and whether this call created it.
 */
export async function ensureAdminKey(
  db: PrismaClient,
  secret: string,
): Promise<{ apiKeyId: string; created: boolean; revoked: boolean }> {
  if (secret.length < MIN_ADMIN_KEY_CHARS)
    throw new Error(`the admin key must have at least ${MIN_ADMIN_KEY_CHARS} characters`);
  const hash = hashApiKey(secret);
  const existing = await db.apiKey.findUnique({ where: { hash } });
  if (existing) return { apiKeyId: existing.id, created: false, revoked: existing.revokedAt !== null };
  const id = newId("apiKey");
  const inserted = await db.apiKey.createMany({
    data: [{ id, hash, prefix: `${secret.slice(0, 4)}…`, role: "ADMIN", tenantId: null }],
    skipDuplicates: true,
  });
  if (inserted.count === 1) return { apiKeyId: id, created: true, revoked: false };
  const row = await db.apiKey.findUniqueOrThrow({ where: { hash } });
  return { apiKeyId: row.id, created: false, revoked: row.revokedAt !== null };
}
