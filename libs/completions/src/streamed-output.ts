/**
 * What a client received: the tokens of a completion's stream before its done event. A
 * completion ended by a process that does not hold all of its tokens — a worker failing or
 * cancelling a replay before it caught up with its stream (stalled too often, cancelled at
 * start, a model that cannot load), or the API cancelling a job that had run before it went
 * back to its queue — takes its output from here, so the row, the usage and the done event
 * count the same tokens.
 */
import { isTerminalStatus } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { TokenStreams } from "@lite/stream";
import { recordCompletionUsage } from "@lite/telemetry";

/** An output: how many tokens and their text. */
export interface StreamedOutput {
  outputTokens: number;
  text: string;
}

/** The tokens the stream holds (before any done event) and their text; nothing for an absent stream. */
export async function streamedOutput(
  streams: Pick<TokenStreams, "readAll">,
  tenantId: string,
  completionId: string,
): Promise<StreamedOutput> {
  const tokens = (await streams.readAll(tenantId, completionId)).filter((e) => !e.done);
  return { outputTokens: tokens.length, text: tokens.map((e) => e.text).join("") };
}

/**
 * The output a completion ends with: its ender's own, unless the stream already holds more
 * (then what the client received). Indices are contiguous from 0 (libs/stream refuses a
 * gap), so "more" is a longer prefix of the same deterministic output.
 */
export function receivedOutput(own: StreamedOutput, streamed: StreamedOutput): StreamedOutput {
  return streamed.outputTokens > own.outputTokens ? streamed : own;
}

/**
 * The usage of a completion ended by the API with streamed tokens (its worker died): the
 * row's prompt and mode, the streamed tokens; expert calls are unknown here (the worker
 * that counted them is gone). Idempotent per completion and meter, like the worker's; a row
 * already final is left alone (its ender recorded its usage before finalising it).
 */
export async function recordStreamedUsage(
  db: PrismaClient,
  ref: { tenantId: string; completionId: string },
  out: StreamedOutput,
  occurredAt: Date,
): Promise<void> {
  const row = await db.completion.findUnique({
    where: { id: ref.completionId },
    select: { promptTokens: true, mode: true, status: true },
  });
  if (!row || isTerminalStatus(row.status)) return;
  await recordCompletionUsage(db, {
    ...ref,
    inputTokens: row.promptTokens,
    outputTokens: out.outputTokens,
    expertCallsByTier: {},
    mode: row.mode,
    occurredAt,
  });
}
