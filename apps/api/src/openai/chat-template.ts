import type { ChatMessage } from "./openai.request";

/**
 * The chat template: each message on its own lines under a role marker, then the marker of
 * the assistant's turn, which the model continues:
 *
 *   <|system|>\nYou are terse.\n<|user|>\nHello\n<|assistant|>\n
 *
 * `developer` messages render as `system` (OpenAI's newer name for it); a content given as
 * text parts is their texts joined; `name` is not rendered. The models served here are
 * byte-level and were not trained on a chat format, so this is a convention, documented in
 * the README, that makes the same conversation give the same prompt every time.
 */
export function renderChatPrompt(messages: readonly ChatMessage[]): string {
  const turns = messages.map((m) => `<|${m.role === "developer" ? "system" : m.role}|>\n${contentText(m)}\n`);
  return `${turns.join("")}<|assistant|>\n`;
}

function contentText(m: ChatMessage): string {
  if (m.content === null) return "";
  if (typeof m.content === "string") return m.content;
  return m.content.map((p) => p.text).join("");
}
