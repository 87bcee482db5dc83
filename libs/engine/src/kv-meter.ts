import type { EngineContext, KvTally, Running } from "./engine-context";

/**
 * KV byte-seconds of each held sequence (the KV_BYTE_SECONDS meter): the KV bytes it holds
 * (libs/model KvCache, what its tenant's KV quota counts) × how long it held them.
 *
 * 1. A sequence starts here holding nothing (`kvTally`, at the moment it is held).
 * 2. After every decode step, each held sequence's tally adds the bytes it held since its
 *    last sample × the time since, then takes its bytes now (`kvBytes` of its batch). KV
 *    bytes change only inside a step (a prefill, one more position, a pause that drops them,
 *    the last token that releases them), so this is the exact integral up to one step's
 *    duration at each change.
 * 3. When it ends, the time since its last sample is added with the bytes it last held
 *    (a sequence cancelled while parked held them until then), and the total in
 *    byte-seconds is rounded to an integer for its usage event.
 * A resumed job meters only this worker's time: the KV a dead worker held died with it.
 */

export function kvTally(nowMs: number): KvTally {
  return { bytes: 0, sampledAtMs: nowMs, byteMs: 0 };
}

/** Step 2: after a decode step, every held sequence's KV since its last sample. */
export function sampleKv(ctx: EngineContext): void {
  const nowMs = ctx.now();
  for (const r of ctx.running.values()) {
    if (!r.kv) continue;
    addElapsed(r.kv, nowMs);
    r.kv.bytes = r.batch.kvBytes(r.spec.completionId);
  }
}

/** Step 3: the sequence's KV byte-seconds at its end (0 for a job that never held KV here). */
export function kvByteSecondsAtEnd(r: Pick<Running, "kv">, nowMs: number): number {
  if (!r.kv) return 0;
  addElapsed(r.kv, nowMs);
  r.kv.bytes = 0;
  return Math.round(r.kv.byteMs / 1000);
}

function addElapsed(t: KvTally, nowMs: number): void {
  t.byteMs += t.bytes * Math.max(0, nowMs - t.sampledAtMs);
  t.sampledAtMs = nowMs;
}
