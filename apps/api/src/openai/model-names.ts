import type { ApiServices } from "../services";
import type { Flavour } from "./openai.shapes";

/** OpenAI's default max_tokens of /v1/completions. */
export const TEXT_DEFAULT_MAX_TOKENS = 16;

/** A registered model's name never changes: names by id are kept for the process's life. */
const namesById = new Map<string, string>();

/** The model's name (what /v1/models lists as its id) from its id. */
export async function modelNameOf(services: Pick<ApiServices, "db">, modelId: string): Promise<string> {
  let name = namesById.get(modelId);
  if (name === undefined) {
    const m = await services.db.model.findUnique({ where: { id: modelId }, select: { name: true } });
    name = m?.name ?? modelId;
    if (m) namesById.set(modelId, name);
  }
  return name;
}

/**
 * max_tokens when the request gives none: OpenAI's 16 for /v1/completions; for chat, what
 * the model's context leaves after the prompt (1 BOS + its bytes), at most MAX_OUTPUT_TOKENS.
 * An unknown model gets MAX_OUTPUT_TOKENS and createCompletion's own refusal.
 */
export async function defaultMaxTokens(
  services: Pick<ApiServices, "db" | "env" | "completions">,
  flavour: Flavour,
  model: string | null,
  prompt: string,
): Promise<number> {
  const cap = services.env.MAX_OUTPUT_TOKENS;
  if (flavour === "text") return Math.min(TEXT_DEFAULT_MAX_TOKENS, cap);
  const found = await services.db.model.findFirst({
    where: model ? { OR: [{ id: model }, { name: model }] } : { isDefault: true },
    select: { name: true },
  });
  const context = found ? services.completions.maxContextTokens(found.name) : undefined;
  if (context === undefined) return cap;
  return Math.max(1, Math.min(cap, context - 1 - Buffer.byteLength(prompt, "utf8")));
}
