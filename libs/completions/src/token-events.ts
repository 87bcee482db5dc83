import { badInput, DomainError, err, isTerminalStatus, ok, type Result } from "@lite/core";
import type { TokenStreams } from "@lite/stream";
import type { CompletionRow, CompletionTokenEvent } from "./completion.types";

/**
 * The source of a token subscription: replay from `fromIndex`, then live, ending after the
 * done event. Refusals: BAD_USER_INPUT for a bad index; STREAM_EXPIRED at once (not as a
 * stream error later) for a finished completion whose stream is gone — its row holds the text.
 * Returning from the iterator (the subscriber left) stops the read.
 */
export async function tokenEvents(
  streams: Pick<TokenStreams, "exists" | "read">,
  row: CompletionRow,
  fromIndex: number,
): Promise<Result<AsyncIterable<CompletionTokenEvent>>> {
  if (!Number.isInteger(fromIndex) || fromIndex < 0)
    return err(badInput("fromIndex", "must be a non-negative integer"));
  const finished = isTerminalStatus(row.status);
  if (finished && !(await streams.exists(row.tenantId, row.id))) {
    return err(
      new DomainError("STREAM_EXPIRED", `token stream of ${row.id} has expired; completion(id).text holds the text`),
    );
  }
  const abort = new AbortController();
  const source = streams.read(row.tenantId, row.id, fromIndex, abort.signal, {
    ifAbsent: finished ? "expired" : "wait",
  });
  return ok({
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<CompletionTokenEvent>> {
          const r = await it.next();
          if (r.done) return { done: true, value: undefined };
          const e = r.value;
          return {
            done: false,
            value: {
              completionId: row.id,
              index: e.index,
              tokenId: e.tokenId,
              text: e.text,
              done: e.done,
              finishReason: e.finishReason,
            },
          };
        },
        async return(): Promise<IteratorResult<CompletionTokenEvent>> {
          abort.abort();
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  });
}
