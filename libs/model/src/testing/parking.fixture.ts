import type { ManualClock } from "@lite/core";
import type { DecodeBatch, StepOutput } from "../decode-batch";

/** Test helpers for batches that park sequences (cold experts) or hold tokens (timing defence). */

/**
 * Steps until `done`, adding each output to `got` by sequence id. A step with no output
 * waits until a sequence may step again, first moving `clock` (when given) past any pad.
 */
export async function runUntil(
  batch: DecodeBatch,
  got: Map<string, StepOutput[]>,
  done: () => boolean,
  clock?: ManualClock,
  /** called before waiting on parked sequences (a test settling the waits it gates) */
  beforeWait?: () => void,
): Promise<void> {
  while (!done()) {
    const out = await batch.step();
    for (const o of out) got.set(o.id, [...(got.get(o.id) ?? []), o]);
    if (out.length > 0) continue;
    clock?.advance(60_000);
    beforeWait?.();
    await batch.whenReady();
  }
}

/** Whether the sequence's last output so far ended it. */
export function hasFinished(got: Map<string, StepOutput[]>, id: string): boolean {
  return (got.get(id) ?? []).some((o) => o.finished);
}

/** What must be the same in a parked or padded run as in a plain one (ids and text aside). */
export const strip = (o: StepOutput[]) =>
  o.map(({ tokenId, index, experts, expertCalls, finished, finishReason }) => ({
    tokenId,
    index,
    experts,
    expertCalls,
    finished,
    finishReason,
  }));
