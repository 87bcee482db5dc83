import { badInput, type FinishReason } from "@lite/core";
import { forwardPass, type PassSequence } from "./forward-pass";
import { KvCache } from "./kv-cache";
import type { ModelCore } from "./model-core";
import { sampleToken } from "./token-sampler";

/**
 * A continuous batch: sequences join and leave between steps; each step advances every
 * unfinished sequence by one token (its first step also prefills the prompt).
 */

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
  finishReason?: Extract<FinishReason, "STOP" | "LENGTH">;
  /** token × expert evaluations this step, by tier id */
  expertCalls: Record<string, number>;
  /** per layer, distinct experts this step used for this sequence: `<tierId>/g<group>/e<expert>` */
  experts: string[][];
}

export interface StepTimings {
  totalMs: number;
  /** wall time inside onnxruntime calls (expert session lookups included) */
  onnxMs: number;
  /** everything else: norms, attention, routing, sampling, bookkeeping */
  tsMs: number;
  rows: number;
  expertRuns: number;
}

export interface DecodeBatch {
  add(seq: SequenceSpec): void;
  remove(id: string): void;
  /**
   * Advances every unfinished sequence by one token, or, given `only`, just those of
   * them (the rest keep their state and wait: the worker's token-level fairness).
   */
  step(only?: Iterable<string>): Promise<StepOutput[]>;
  kvBytes(id: string): number;
  readonly size: number;
  readonly lastStepTimings: StepTimings | undefined;
}

interface SequenceState {
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
}

export class DecodeBatchImpl implements DecodeBatch {
  private readonly seqs = new Map<string, SequenceState>();
  private stepping = false;
  lastStepTimings: StepTimings | undefined;

  constructor(private readonly core: ModelCore) {}

  get size(): number {
    return this.seqs.size;
  }

  add(spec: SequenceSpec): void {
    const { arch, tierIndex } = this.core;
    if (!spec.id) throw badInput("id", "must not be empty");
    if (this.seqs.has(spec.id)) throw badInput("id", `sequence ${spec.id} is already in the batch`);
    if (spec.tierIds.length === 0) throw badInput("tierIds", "at least one tier is required");
    const activeTiers = this.core.tiers.map(() => false);
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
    this.seqs.set(spec.id, {
      spec: { ...spec, promptTokens: [...spec.promptTokens], tierIds: [...spec.tierIds], resumeTokens: undefined },
      activeTiers,
      kv: new KvCache(arch.layers, arch.dModel, this.core.kvBlockTokens, arch.heads),
      tokens: [arch.bosToken, ...spec.promptTokens, ...resumed],
      promptRows: 1 + spec.promptTokens.length,
      processed: 0,
      generated: resumed.length,
      finished: false,
    });
  }

  remove(id: string): void {
    const s = this.seqs.get(id);
    if (!s) return;
    s.kv.release();
    this.seqs.delete(id);
  }

  kvBytes(id: string): number {
    return this.seqs.get(id)?.kv.bytes() ?? 0;
  }

  async step(only?: Iterable<string>): Promise<StepOutput[]> {
    if (this.stepping) throw new Error("decode-batch: step() called while a step is running");
    this.stepping = true;
    const started = performance.now();
    try {
      const subset = only === undefined ? undefined : new Set(only);
      const running = [...this.seqs.values()].filter(
        (s) => !s.finished && (subset === undefined || subset.has(s.spec.id)),
      );
      if (running.length === 0) return [];
      const layers = this.core.arch.layers;
      const pass: PassSequence[] = running.map((s) => ({
        tenantId: s.spec.tenantId,
        seed: s.spec.routingSeed,
        activeTiers: s.activeTiers,
        kv: s.kv,
        tokens: s.tokens.slice(s.processed),
        firstPos: s.processed,
        promptRows: s.promptRows,
        experts: Array.from({ length: layers }, () => new Set<string>()),
        expertCalls: new Map(),
      }));
      const { logits, timings } = await forwardPass(this.core, pass);
      const vocab = this.core.arch.vocabSize;
      const { eos } = this.core.tokenizer;
      const outputs = running.map((s, i): StepOutput => {
        s.processed = s.tokens.length;
        const index = s.generated;
        const tokenId = sampleToken(
          logits,
          i * vocab,
          this.core.samplable,
          s.spec.temperature,
          s.spec.routingSeed,
          index,
        );
        s.tokens.push(tokenId);
        s.generated++;
        const finishReason = tokenId === eos ? "STOP" : s.generated >= s.spec.maxTokens ? "LENGTH" : undefined;
        s.finished = finishReason !== undefined;
        return {
          id: s.spec.id,
          index,
          tokenId,
          text: this.core.tokenizer.tokenText(tokenId),
          finished: s.finished,
          ...(finishReason ? { finishReason } : {}),
          expertCalls: Object.fromEntries(pass[i].expertCalls),
          experts: pass[i].experts.map((set) => [...set].sort()),
        };
      });
      const totalMs = performance.now() - started;
      this.lastStepTimings = {
        totalMs,
        onnxMs: timings.onnxMs,
        tsMs: totalMs - timings.onnxMs,
        rows: timings.rows,
        expertRuns: timings.expertRuns,
      };
      return outputs;
    } finally {
      this.stepping = false;
    }
  }
}
