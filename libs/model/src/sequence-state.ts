import { badInput } from "@lite/core";
import { KvCache } from "./kv-cache";
import type { KvMember } from "./kv-ledger";
import type { ModelCore } from "./model-core";
import type { SequenceSpec, SequenceState } from "./decode-batch.types";

/**
 * A sequence as DecodeBatch.add takes it in: its spec checked (a bad one throws BAD_INPUT
 * naming the field), its KV cache, and its member of the KV ledger (not registered yet).
 */
export function newSequenceState(core: ModelCore, spec: SequenceSpec): SequenceState {
  const { arch, tierIndex } = core;
  if (spec.tierIds.length === 0) throw badInput("tierIds", "at least one tier is required");
  const activeTiers = core.tiers.map(() => false);
  for (const t of spec.tierIds) {
    const i = tierIndex.get(t);
    if (i === undefined) throw badInput("tierIds", `unknown tier ${t}`);
    activeTiers[i] = true;
  }
  if (!Number.isInteger(spec.maxTokens) || spec.maxTokens < 1)
    throw badInput("maxTokens", "must be a positive integer");
  if (!(spec.temperature >= 0 && spec.temperature <= 2)) throw badInput("temperature", "must be within 0..2");
  if (spec.promptTokens.some((t) => !Number.isInteger(t) || t < 0 || t >= arch.vocabSize)) {
    throw badInput("promptTokens", `token ids must be integers in 0..${arch.vocabSize - 1}`);
  }
  const resumed = spec.resumeTokens ?? [];
  if (resumed.some((t) => !Number.isInteger(t) || t < 0 || t >= arch.vocabSize)) {
    throw badInput("resumeTokens", `token ids must be integers in 0..${arch.vocabSize - 1}`);
  }
  if (resumed.length >= spec.maxTokens) {
    throw badInput(
      "resumeTokens",
      `${resumed.length} tokens already produced: nothing left of maxTokens ${spec.maxTokens}`,
    );
  }
  const needed = 1 + spec.promptTokens.length + spec.maxTokens;
  if (needed > arch.maxContextTokens) {
    throw badInput(
      "maxTokens",
      `prompt (${spec.promptTokens.length} tokens + BOS) plus maxTokens (${spec.maxTokens}) exceeds the model context of ${arch.maxContextTokens}`,
    );
  }
  const state: SequenceState = {
    spec: { ...spec, promptTokens: [...spec.promptTokens], tierIds: [...spec.tierIds], resumeTokens: undefined },
    activeTiers,
    kv: new KvCache(arch.layers, arch.dModel, core.kvBlockTokens, arch.heads, arch.maxContextTokens),
    tokens: [arch.bosToken, ...spec.promptTokens, ...resumed],
    promptRows: 1 + spec.promptTokens.length,
    processed: 0,
    generated: resumed.length,
    finished: false,
    padTiers: new Set(),
    waited: new Set(),
    member: undefined as unknown as KvMember,
    inPass: false,
    callsReported: new Map(),
  };
  state.member = {
    tenantId: spec.tenantId,
    heldBytes: () => state.kv.bytes(),
    nextBytes: () => state.kv.bytesFor(state.tokens.length),
    done: () => state.finished,
    inPass: () => state.inPass,
    drop: () => {
      // Paused: its next step feeds every token from position 0 (prompt attention for the
      // prompt rows, decode attention for the rest), as a resumed job's first step does.
      state.kv.release();
      state.processed = 0;
      // Its resume point's K/V rows are gone: its next pass starts at layer 0.
      state.resume = undefined;
      // Its resume recomputes the rows it fed, routed as before: their calls were reported.
      state.callsRecomputed = new Map(state.callsReported);
    },
  };
  return state;
}
