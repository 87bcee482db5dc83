import type * as ort from "onnxruntime-node";
import type { Architecture, TierDescription } from "@lite/manifest";
import type { Tokenizer } from "./byte-tokenizer";
import type { ExpertLoads } from "./expert-loads";
import type { ExpertRef, ExpertStore } from "./expert-store";
import type { HserRouter } from "./hser-router";
import type { KvLedger } from "./kv-ledger";
import type { TimingDefence } from "./timing-defence";

/**
 * What the decode loop needs from a loaded model; shared by every batch of a runtime.
 * Its own module so that the runtime (which builds it), the batch and the forward pass
 * (which read it) do not import each other in a cycle.
 */
export interface ModelCore {
  arch: Architecture;
  /** the tiers as the runtime routes them (TierInfo) */
  tiers: TierDescription[];
  tierIndex: Map<string, number>;
  /** [tier][layer][slot] */
  experts: ExpertRef[][][];
  router: HserRouter;
  store: ExpertStore;
  /**
   * true: a step parks the sequences whose expert is not HOT and goes on with the others
   * (the worker's shared step); false: the step waits for the load (tools, single runs)
   */
  parkColdExperts: boolean;
  /** loads started by parking steps, off the step, each timed for the timing defence */
  loads: ExpertLoads;
  /** pads a tenant's first use of a resident expert (effective only with parking) */
  defence: TimingDefence;
  embedding: ort.InferenceSession;
  layers: { qkv: ort.InferenceSession; attnOut: ort.InferenceSession; router: ort.InferenceSession }[];
  lmHead: ort.InferenceSession;
  /** causal attention over a prompt (no weights; built in memory, shared by every layer) */
  attention: ort.InferenceSession;
  tokenizer: Tokenizer;
  samplable: number[];
  kvBlockTokens: number;
  /** per-tenant KV quotas over every batch of the worker (kv-ledger.ts) */
  kv: KvLedger;
}
