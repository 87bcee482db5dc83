import type { FinishReason } from "@lite/core";
import type { KvCache } from "./kv-cache";
import type { KvMember } from "./kv-ledger";
import type { ResumePoint } from "./expert-stage.types";

/** The types of a decode batch (decode-batch.ts): what callers pass and get back, and a sequence's state. */

export interface SequenceSpec {
  id: string;
  tenantId: string;
  /** prompt token ids (bytes); BOS is prepended by the batch */
  promptTokens: number[];
  /** routing tie-breaks and sampling draws are keyed by this (see deriveRoutingSeed) */
  routingSeed: bigint;
  /** the TierSet: tier ids of this model */
  tierIds: string[];
  /** 0 = argmax; up to 2 */
  temperature: number;
  maxTokens: number;
  /**
   * Tokens this sequence already produced (a job resumed on another worker): they are fed
   * with the prompt in its first step, which rebuilds the KV cache without sampling them
   * again; its first output is index `resumeTokens.length`. Each row after the prompt is
   * computed exactly as the decode step that first fed it (see forward-pass.ts), so the
   * tokens that follow are those of an uninterrupted run.
   */
  resumeTokens?: number[];
}

export interface StepOutput {
  id: string;
  /** 0-based index of this token in the sequence's output */
  index: number;
  tokenId: number;
  text: string;
  finished: boolean;
  /**
   * ERROR: the sequence cannot go on (`error` says why); such an output carries no token
   * (tokenId -1, text ""). LENGTH with tokenId -1: it outgrew its tenant's KV quota and ends
   * with the tokens it produced before.
   */
  finishReason?: Extract<FinishReason, "STOP" | "LENGTH" | "ERROR">;
  /** with finishReason ERROR: why, e.g. an expert it needs could not be loaded */
  error?: string;
  /** token × expert evaluations this step, by tier id */
  expertCalls: Record<string, number>;
  /** per layer, distinct experts this step used for this sequence: `<tierId>/g<group>/e<expert>` */
  experts: string[][];
}

export interface StepTimings {
  totalMs: number;
  /** wall time inside onnxruntime calls (expert loads included when the step waits for them) */
  onnxMs: number;
  /** everything else: norms, attention, routing, sampling, bookkeeping */
  tsMs: number;
  rows: number;
  expertRuns: number;
}

/** DecodeBatch.step's options. */
export interface StepOptions {
  /**
   * Called after each layer of the step's pass but the last. It may step OTHER sequences of
   * the batch (none of this pass: step() throws), e.g. a request that arrived during the
   * pass, for its first token, instead of making it wait for the whole pass. Their rows are
   * their own (a sequence's tokens do not depend on its batch); the pass then goes on where
   * it was. A step run from it gets no such hook.
   */
  betweenLayers?: () => Promise<void>;
}

/** Why a sequence sits out steps (DecodeBatch.waiting). */
export type SequenceWait = "load" | "pad" | "kv";

export interface DecodeBatch {
  add(seq: SequenceSpec): void;
  remove(id: string): void;
  /**
   * Advances every unfinished sequence by one token, or, given `only`, just those of
   * them (the rest keep their state and wait: the worker's token-level fairness).
   */
  step(only?: Iterable<string>, opts?: StepOptions): Promise<StepOutput[]>;
  /**
   * Why the sequence cannot step now: "load" (parked on an expert load), "pad" (its token
   * held by the timing defence) or "kv" (no room in its tenant's KV quota); undefined when
   * it can (or is not in the batch).
   */
  waiting(id: string): SequenceWait | undefined;
  /** Resolves once a sequence may step that could not (a load settled, a hold ended), or at once if one may now. */
  whenReady(): Promise<void>;
  kvBytes(id: string): number;
  readonly size: number;
  readonly lastStepTimings: StepTimings | undefined;
}

/** A sequence as the batch holds it (decode-batch.ts only). */
export interface SequenceState {
  spec: SequenceSpec;
  activeTiers: boolean[];
  kv: KvCache;
  /** BOS + prompt + generated */
  tokens: number[];
  /** BOS + prompt: the rows of the first step that go through prompt attention */
  promptRows: number;
  /** positions already in the KV cache */
  processed: number;
  generated: number;
  finished: boolean;
  /** set while parked: settles when the loads it waits for do */
  parked?: Promise<void>;
  /**
   * set by a park: where its current token's pass stopped, and the experts and calls of the
   * layers it passed (its next pass goes on from there); cleared when the token is sampled
   * or its KV is dropped
   */
  resume?: { point: ResumePoint; experts: Set<string>[]; expertCalls: Map<string, number> };
  /** a load it waited for failed: its next step ends it with this error */
  failure?: string;
  /** its computed token, held back by the timing defence until `untilMs` (clock time) */
  held?: { output: StepOutput; untilMs: number; timer: ReturnType<typeof setTimeout> };
  /** when the first attempt at its current token began (clock ms): a pad counts from there */
  attemptStartedMs?: number;
  /** tiers its current token owes a timing pad for (kept across parks) */
  padTiers: Set<string>;
  /** experts its current token waited for, loaded or as if (expert-parking.ts; kept across parks) */
  waited: Set<string>;
  /** its entry in the worker's KV ledger */
  member: KvMember;
  /** inside a running forward pass (its KV must not be dropped) */
  inPass: boolean;
  /** expert calls reported in its outputs so far, by tier: the calls of every row it has fed */
  callsReported: Map<string, number>;
  /** set by a pause: the calls its resuming prefill recomputes (not reported again) */
  callsRecomputed?: Map<string, number>;
}
