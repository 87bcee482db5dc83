import type { TokenStreams } from "@lite/stream";
import type { TokenSink } from "../ports";

/** Adapts libs/stream TokenStreams (idempotent by index) to the engine's TokenSink. */
export function streamTokenSink(streams: Pick<TokenStreams, "lastIndex" | "append">): TokenSink {
  return {
    lastIndex: (tenantId, completionId) => streams.lastIndex(tenantId, completionId),
    async append(batch) {
      // One Lua call per completion, all issued at once (ioredis writes them back to back).
      await Promise.all(
        batch.map((b) =>
          streams.append(
            b.tenantId,
            b.completionId,
            b.tokens.map((t) => ({
              version: 1 as const,
              index: t.index,
              tokenId: t.tokenId,
              text: t.text,
              done: false,
              finishReason: null,
            })),
          ),
        ),
      );
    },
    async finish(tenantId, completionId, tokens, finishReason) {
      // The final event follows whatever the stream holds (a job cancelled or failed while
      // replaying has streamed more than it regenerated); an existing done event wins.
      const last = await streams.lastIndex(tenantId, completionId);
      const index = Math.max(tokens, last + 1);
      await streams.append(tenantId, completionId, [
        { version: 1, index, tokenId: -1, text: "", done: true, finishReason },
      ]);
    },
  };
}
