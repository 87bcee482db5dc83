import type { FinishReason } from "@lite/core";
import type { CompletionView } from "@lite/completions";

/**
 * The response bodies and stream chunks of /v1/completions ("text") and
 * /v1/chat/completions ("chat"), in OpenAI's shapes. `id` is the completion's id (`cmp_…`),
 * the one GraphQL's `completion(id)` answers too.
 */
export type Flavour = "text" | "chat";

/** OpenAI's finish reasons; a stop sequence is "stop", a completion cancelled elsewhere "cancelled". */
export type OpenAiFinish = "stop" | "length" | "cancelled";

export function openAiFinish(reason: FinishReason | null, stoppedBySequence: boolean): OpenAiFinish {
  if (stoppedBySequence || reason === "STOP") return "stop";
  if (reason === "LENGTH") return "length";
  return "cancelled";
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** What every body and chunk of one completion repeats. */
export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  /** stream_options.include_usage: every chunk carries `usage: null`, a last chunk the usage */
  includeUsage: boolean;
  /** this runtime's own facts about the completion (OpenAI clients ignore unknown fields) */
  lite: { mode: string; tiers: string[]; degraded: boolean; seed: string };
}

export function metaOf(view: CompletionView, modelName: string, includeUsage: boolean): ResponseMeta {
  return {
    id: view.id,
    created: Math.floor(view.createdAt.getTime() / 1000),
    model: modelName,
    includeUsage,
    lite: { mode: view.mode, tiers: view.tierSet, degraded: view.degraded, seed: view.seed },
  };
}

/** The non-streamed answer. */
export function responseBody(
  flavour: Flavour,
  m: ResponseMeta,
  text: string,
  finish: OpenAiFinish | null,
  usage: Usage,
) {
  const head = { id: m.id, created: m.created, model: m.model, system_fingerprint: null, lite: m.lite };
  if (flavour === "text") {
    return {
      ...head,
      object: "text_completion",
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      usage,
    };
  }
  return {
    ...head,
    object: "chat.completion",
    choices: [
      { index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: finish },
    ],
    usage,
  };
}

/**
 * One stream chunk: a piece of text (chat: the first chunk also carries the role), or the
 * finish reason with no text.
 */
export function chunkBody(
  flavour: Flavour,
  m: ResponseMeta,
  piece: { text: string; first?: boolean; finish?: OpenAiFinish },
) {
  const finish = piece.finish ?? null;
  const usage = m.includeUsage ? { usage: null } : {};
  const head = { id: m.id, created: m.created, model: m.model, system_fingerprint: null };
  if (flavour === "text") {
    return {
      ...head,
      object: "text_completion",
      choices: [{ index: 0, text: piece.text, logprobs: null, finish_reason: finish }],
      ...usage,
    };
  }
  const delta = finish ? {} : piece.first ? { role: "assistant", content: piece.text } : { content: piece.text };
  return {
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...usage,
  };
}

/** The last chunk when include_usage is set: no choices, the usage. */
export function usageChunk(flavour: Flavour, m: ResponseMeta, usage: Usage) {
  const object = flavour === "text" ? "text_completion" : "chat.completion.chunk";
  return { id: m.id, object, created: m.created, model: m.model, system_fingerprint: null, choices: [], usage };
}
