import type { PrismaClient } from "@lite/db";
import { CompletionRowStore } from "@lite/completions";
import type { CompletionStore } from "@lite/engine";

/**
 * The engine's CompletionStore over the completion rows: libs/completions owns them (the
 * only writer). Kept for the composition's import; it can call `new CompletionRowStore(db)`.
 */
export function prismaCompletionStore(db: PrismaClient, weightTtlMs = 5000): CompletionStore {
  return new CompletionRowStore(db, { weightTtlMs });
}
