import { endStream, streamedOutput } from "@lite/completions";
import type { TokenEvent, TokenStreams } from "@lite/stream";
import type { TokenSink } from "../ports";

/** Adapts libs/stream TokenStreams (idempotent by index) to the engine's TokenSink. */
export function streamTokenSink(
  streams: Pick<TokenStreams, "lastIndex" | "append" | "appendMany" | "readAll">,
): TokenSink {
  return {
    async resumePoint(tenantId, completionId) {
      const events = await streams.readAll(tenantId, completionId);
      const done = events.find((e) => e.done);
      const tokens = events.filter((e) => !e.done).map(({ index, tokenId, text }) => ({ index, tokenId, text }));
      return done?.finishReason ? { tokens, finishReason: done.finishReason } : { tokens };
    },
    async append(batch) {
      // One Lua call per tenant (its streams share its hash tag), all issued at once.
      const byTenant = new Map<string, Array<{ completionId: string; events: TokenEvent[] }>>();
      for (const b of batch) {
        const item = {
          completionId: b.completionId,
          events: b.tokens.map((t) => ({
            version: 1 as const,
            index: t.index,
            tokenId: t.tokenId,
            text: t.text,
            done: false,
            finishReason: null,
          })),
        };
        const list = byTenant.get(b.tenantId);
        if (list) list.push(item);
        else byTenant.set(b.tenantId, [item]);
      }
      await Promise.all([...byTenant].map(([tenantId, items]) => streams.appendMany(tenantId, items)));
    },
    streamed: (tenantId, completionId) => streamedOutput(streams, tenantId, completionId),
    // endCompletion's stream step, the same for the API and the worker: the done event at
    // max(tokens, lastIndex + 1); an existing done event wins.
    finish: (tenantId, completionId, tokens, finishReason) =>
      endStream(streams, tenantId, completionId, tokens, finishReason),
  };
}
