import type { PrismaClient, Tx } from "@lite/db";
import type { CompletionRow } from "./completion.types";

/** The columns createCompletion sets; the others take their defaults (status QUEUED, no output). */
export interface NewCompletion {
  id: string;
  tenantId: string;
  modelId: string;
  apiKeyId: string | null;
  mode: CompletionRow["mode"];
  tierSet: string[];
  degraded: boolean;
  seed: string;
  prompt: string;
  promptTokens: number;
  maxTokens: number;
  temperature: number;
  costWeight: number;
}

/**
 * Inserts a QUEUED completion row and returns it. Raw SQL: every createCompletion runs it, and
 * Prisma's query compiler (no plan cache in Prisma 6) made the ORM insert the API's largest
 * single cost under a flood of creates (docs/PERFORMANCE.md). `createdAt` is this process'
 * time, as Prisma's `@default(now())` gave it, stored as UTC whatever the session's time zone.
 */
export async function insertCompletion(db: PrismaClient | Tx, c: NewCompletion) {
  const rows = await db.$queryRaw<CompletionRow[]>`
    INSERT INTO "Completion" (id, "tenantId", "modelId", "apiKeyId", status, mode, "tierSet", degraded, seed,
      prompt, "promptTokens", "maxTokens", temperature, "costWeight", "createdAt")
    VALUES (${c.id}, ${c.tenantId}, ${c.modelId}, ${c.apiKeyId}, 'QUEUED', ${c.mode}::"TierMode",
      ${c.tierSet}::text[], ${c.degraded}, ${c.seed}, ${c.prompt}, ${c.promptTokens}, ${c.maxTokens},
      ${c.temperature}, ${c.costWeight}, ${new Date().toISOString()}::timestamptz AT TIME ZONE 'UTC')
    RETURNING *`;
  return rows[0];
}
