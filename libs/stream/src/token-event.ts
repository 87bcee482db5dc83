import { z } from "zod";
import { FINISH_REASONS } from "@lite/core";

/**
 * One event of a completion's token stream (contract: completionTokens). Tokens have index
 * 0, 1, 2, …; then one final event with done = true, index = number of tokens, tokenId = -1,
 * text = "" and the finish reason.
 */
export const TokenEvent = z.object({
  version: z.literal(1),
  index: z.number().int().nonnegative(),
  tokenId: z.number().int(),
  text: z.string(),
  done: z.boolean(),
  finishReason: z.enum(FINISH_REASONS).nullable(),
});
export type TokenEvent = z.infer<typeof TokenEvent>;
