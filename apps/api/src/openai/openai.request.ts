import { z } from "zod";
import { badInput, TIER_MODES, type DomainError, type Result, err, ok } from "@lite/core";

/**
 * The request bodies of POST /v1/completions and /v1/chat/completions (OpenAI's fields this
 * runtime honours, plus its own `mode` and `tiers`). Fields OpenAI has and this runtime does
 * not use (top_p, presence_penalty, logprobs, …) are ignored, as `user` is; a known field
 * with a bad value is refused naming it.
 */
const seed = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d{1,20}$/, "must be a non-negative integer")])
  .transform(String);

const stop = z.union([
  z.string().min(1, "a stop sequence must not be empty"),
  z.array(z.string().min(1, "a stop sequence must not be empty")).max(4, "at most 4 stop sequences"),
]);

const common = {
  model: z.string().min(1).max(200).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  seed: seed.nullish(),
  stop: stop.nullish(),
  n: z.literal(1, { error: "only n = 1 is supported (one choice per request)" }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.unknown().optional(),
  mode: z.enum(TIER_MODES).nullish(),
  tiers: z.array(z.string().min(1).max(200)).min(1).max(16).nullish(),
};

export const CompletionBody = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1, "batched prompts are not supported: send one string")]),
});
export type CompletionBody = z.infer<typeof CompletionBody>;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(textPart).min(1)]).nullable(),
  name: z.string().max(64).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const ChatBody = z.object({
  ...common,
  messages: z.array(ChatMessage).min(1, "at least one message"),
});
export type ChatBody = z.infer<typeof ChatBody>;

/** The fields both bodies share, after parsing. */
export type CommonBody = Omit<ChatBody, "messages">;

/** The first problem of a body as BAD_USER_INPUT naming its field (`messages.0.role`). */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): Result<T, DomainError> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    return err(badInput("body", "must be a JSON object (Content-Type: application/json)"));
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return ok(parsed.data);
  const issue = parsed.error.issues[0];
  const field = issue.path.length ? issue.path.map(String).join(".") : "body";
  return err(badInput(field, issue.message));
}

/** max_completion_tokens (the newer name) wins over max_tokens; both given must agree. */
export function maxTokensOf(body: CommonBody): Result<number | undefined, DomainError> {
  const a = body.max_tokens ?? undefined;
  const b = body.max_completion_tokens ?? undefined;
  if (a !== undefined && b !== undefined && a !== b) {
    return err(badInput("max_completion_tokens", "differs from max_tokens; send one of them"));
  }
  return ok(b ?? a);
}

/** The stop sequences as a list (none: empty). */
export function stopsOf(body: CommonBody): string[] {
  if (body.stop === undefined || body.stop === null) return [];
  return typeof body.stop === "string" ? [body.stop] : body.stop;
}
