/**
 * A prompt that can never fit the tenant's KV quota is refused at admission (docs/KV-QUOTAS.md):
 * a worker holds BOS + the prompt's KV on the sequence's first step, so a prompt whose KV
 * bytes exceed the tenant's `kvCacheBytes` (a per-worker quota) could never run. The bytes are
 * @lite/manifest's `promptKvBytes` of the model's shape, the function the worker's KV cache
 * counts with (wired by the API as `CompletionResources.promptKvBytes`). A prompt exactly at
 * the limit is admitted: it gets at least its first token.
 */
import { DomainError } from "@lite/core";
import type { CompletionResources } from "./completion.types";

export function promptKvRefusal(
  r: Pick<CompletionResources, "promptKvBytes">,
  modelName: string,
  prompt: string,
  kvCacheBytes: bigint,
): DomainError | null {
  const promptTokens = Buffer.byteLength(prompt, "utf8");
  const needed = r.promptKvBytes?.(modelName, promptTokens);
  if (needed === undefined || BigInt(needed) <= kvCacheBytes) return null;
  return new DomainError(
    "QUOTA_EXCEEDED",
    `the prompt (${promptTokens} tokens + BOS) needs ${needed} bytes of KV cache, over the tenant's kvCacheBytes limit (${kvCacheBytes}): it can never run; shorten the prompt or raise kvCacheBytes`,
    { reason: "kvCacheBytes", field: "input.prompt", retryable: false, context: { needed, kvCacheBytes } },
  );
}
