import type { PrefetchingSequence } from "./prefetch-hook";
import type { ExpertRef } from "./expert-store";

// The types of the expert stage (pass-experts.ts) and of its parking (expert-parking.ts).
/**
 * Where a parked sequence resumes: its rows entering the expert stage of `layer` (that
 * layer's attention done, its K/V rows of layers ≤ `layer` written).
 */
export interface ResumePoint {
  layer: number;
  /** position of each of its rows */
  pos: number[];
  /** per row: attention in TypeScript (decode rows) or ONNX (prompt rows) */
  viaTs: boolean[];
  /** its first rows whose attention runs in ONNX (0: none) */
  prefillRows: number;
  /** hidden state of its rows, [rows × d] */
  x: Float32Array;
}

/** What the expert stage reads and fills of a pass's sequence (and, for prefetch, `prefetch`). */
export interface ExpertStageSequence extends PrefetchingSequence {
  /** filled: per layer, the distinct experts its rows used */
  experts: Set<string>[];
  /** filled: token × expert evaluations by tier id */
  expertCalls: Map<string, number>;
  /**
   * Set when the sequence was parked: an expert its rows need was not HOT. It settles once
   * every expert it waits for is loaded, and rejects, naming the expert, when one cannot be.
   */
  parked?: Promise<void>;
  /** set with `parked`: where its next pass picks it up */
  parkedAt?: ResumePoint;
  /** filled: tiers of the experts this sequence owes a timing pad for (first uses, parks) */
  padTiers: Set<string>;
  /**
   * kept across the parks of one token: experts it already waited for, loaded or as if
   * (parkFirstUses); a first use of one of them does not park it again
   */
  waited: Set<string>;
}

export interface ExpertStageOptions {
  /** park the sequences that need an expert that is not HOT (the worker's shared step); off: load it in the pass */
  park: boolean;
}

export interface ExpertUse {
  ref: ExpertRef;
  /** rows routed to it (indices into the stage's rows) */
  rows: number[];
  tenants: Set<string>;
}
