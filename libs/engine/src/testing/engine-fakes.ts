import type { CompletionSpec } from "@lite/completions";
/**
 * Hand-written fakes of the engine's model (a DecodeBatch whose tokens are a pure function of
 * (completion, index), like the real model's seeded decode, so a replay regenerates the same
 * tokens) and EngineHarness: one engine over these and the port fakes (port-fakes.ts), for
 * unit tests that run without PostgreSQL, Redis or onnxruntime.
 */
import type { SequenceSpec, StepOptions, StepOutput } from "@lite/model";
import pino, { type Logger } from "pino";
import { BatchEngine } from "../batch-engine";
import type { BatchEngineOptions } from "../engine-options";
import type { EngineBatch, EngineModel, JobPayload, ModelProvider, TokenOut } from "../ports";
import {
  FakeAdmission,
  FakeHandle,
  FakeMetrics,
  FakeStore,
  FakeTokens,
  FakeUsage,
  FakeWork,
  Faults,
} from "./port-fakes";

/** The token a sequence produces at an index (deterministic, so replays match). */
export function tokenAt(completionId: string, index: number): TokenOut {
  let h = index * 31;
  for (const ch of completionId) h = (h * 33 + ch.charCodeAt(0)) % 9973;
  const tokenId = 97 + (h % 26);
  return { index, tokenId, text: String.fromCharCode(tokenId) };
}

/** never produced by tokenAt (its ids are 97..122) */
export const FAKE_EOS = 3;

/** A DecodeBatch: each step advances the given sequences one token; STOP never, LENGTH at maxTokens. */
export class FakeBatch implements EngineBatch {
  readonly seqs = new Map<string, { spec: SequenceSpec; generated: number }>();
  /** ids removed, in order */
  readonly removed: string[] = [];
  /** ids advanced by each step, in order */
  readonly steps: string[][] = [];
  /** ids added, in order */
  readonly added: string[] = [];
  /** tokens generated per sequence id, kept after it leaves the batch (a re-add starts at its resumeTokens) */
  readonly generated = new Map<string, number>();
  /** per sequence id, how many tokens it was resumed after at its last add */
  readonly resumedFrom = new Map<string, number>();
  /** called before each step with its ids (tests flip cancel flags or locks here) */
  beforeStep?: (ids: string[]) => void;
  /** awaited by each step before it computes (a step that hangs) */
  stepGate?: () => Promise<void>;
  /**
   * Layers of the fake's pass: a step given StepOptions.betweenLayers calls it after each
   * but the last (default 1: never), after its stepGate; steps run from it are not gated
   */
  layers = 1;
  /** ids of the steps begun while another step was running (from its betweenLayers hook) */
  readonly nested: string[][] = [];
  private depth = 0;

  add(seq: SequenceSpec): void {
    if (this.seqs.has(seq.id)) throw new Error(`sequence ${seq.id} already in the batch`);
    const resumed = seq.resumeTokens?.length ?? 0;
    if (resumed >= seq.maxTokens) throw new Error(`sequence ${seq.id} has no tokens left to produce`);
    this.seqs.set(seq.id, { spec: seq, generated: resumed });
    this.added.push(seq.id);
    this.resumedFrom.set(seq.id, resumed);
    this.generated.set(seq.id, resumed);
  }

  remove(id: string): void {
    this.removed.push(id);
    this.seqs.delete(id);
  }

  /** The fake never parks or holds a sequence (libs/engine parked-step.test.ts runs the real batch). */
  waiting(): undefined {
    return undefined;
  }

  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  /** KV as the real batch grows it: 1 KiB per token generated (0 once finished or removed) */
  kvBytes(id: string): number {
    const s = this.seqs.get(id);
    return s && s.generated < s.spec.maxTokens ? s.generated * 1024 : 0;
  }

  async step(only?: Iterable<string>, opts: StepOptions = {}): Promise<StepOutput[]> {
    const ids = only ? [...only] : [...this.seqs.keys()];
    this.beforeStep?.(ids);
    this.steps.push(ids);
    if (this.depth > 0) this.nested.push(ids);
    this.depth++;
    try {
      if (this.stepGate && this.depth === 1) await this.stepGate();
      await Promise.resolve();
      if (opts.betweenLayers && this.depth === 1) for (let l = 0; l < this.layers - 1; l++) await opts.betweenLayers();
    } finally {
      this.depth--;
    }
    const out: StepOutput[] = [];
    for (const id of ids) {
      const s = this.seqs.get(id);
      if (!s || s.generated >= s.spec.maxTokens) continue;
      const t = tokenAt(id, s.generated++);
      this.generated.set(id, s.generated);
      const finished = s.generated >= s.spec.maxTokens;
      out.push({
        id,
        ...t,
        finished,
        finishReason: finished ? "LENGTH" : undefined,
        expertCalls: { t0: 2, t1: 1 },
        experts: [],
      });
    }
    return out;
  }
}

export class FakeModels implements ModelProvider {
  readonly batch = new FakeBatch();
  /** model names that fail to load */
  readonly broken = new Set<string>();
  async get(modelName: string): Promise<EngineModel> {
    if (this.broken.has(modelName)) throw new Error(`model ${modelName} failed its hash check`);
    return {
      tokenizer: { encode: (text: string) => Array.from(Buffer.from(text, "utf8")), eos: FAKE_EOS },
      createBatch: () => this.batch,
    };
  }
}

export interface JobOptions {
  maxTokens?: number;
  /** false: a replay or retry (the engine reads the row instead of the payload) */
  firstStart?: boolean;
  status?: CompletionSpec["status"];
  modelName?: string;
}

/** One engine over fakes of all its ports, with the means to queue jobs and wait for outcomes. */
export class EngineHarness {
  /** operations of the finalisation path, in order: usage:, finalise:, finish:, settle:, complete:, fail: */
  readonly log: string[] = [];
  /** warn and error lines the engine logged (parsed) */
  readonly warnings: Array<{ msg: string; [k: string]: unknown }> = [];
  readonly faults = new Faults();
  readonly models = new FakeModels();
  readonly work = new FakeWork(this.faults);
  readonly store = new FakeStore(this.faults, this.log);
  readonly tokens = new FakeTokens(this.faults, this.log);
  readonly admission = new FakeAdmission(this.log);
  readonly usage = new FakeUsage(this.faults, this.log);
  readonly metrics = new FakeMetrics();
  readonly logger: Logger;
  readonly engine: BatchEngine;
  private seq = 0;

  constructor(opts: Partial<BatchEngineOptions> = {}) {
    this.logger = pino(
      { level: "warn" },
      { write: (line: string) => void this.warnings.push(JSON.parse(line) as { msg: string }) },
    );
    this.engine = new BatchEngine(
      { workerId: "w-test", batchSize: 4, idlePollMs: 1, fillPollMs: 1, ...opts },
      {
        models: this.models,
        work: this.work,
        store: this.store,
        tokens: this.tokens,
        admission: this.admission,
        usage: this.usage,
        metrics: this.metrics,
        logger: this.logger,
      },
    );
  }

  get batch(): FakeBatch {
    return this.models.batch;
  }

  /** Writes the row (as the API would) and queues its job; returns the job's handle. */
  enqueue(tenantId: string, o: JobOptions = {}): FakeHandle {
    const completionId = `cmp_${tenantId}_${++this.seq}`;
    const payload: JobPayload = {
      completionId,
      tenantId,
      modelName: o.modelName ?? "tiny",
      prompt: "hello",
      seed: "42",
      tierIds: ["t0", "t1"],
      mode: "BALANCED",
      temperature: 0,
      maxTokens: o.maxTokens ?? 8,
      costWeight: 1.5,
      enqueuedAtMs: Date.now(),
    };
    const { tierIds, enqueuedAtMs, ...rest } = payload;
    this.store.rows.set(completionId, {
      ...rest,
      tierSet: tierIds,
      createdAt: new Date(enqueuedAtMs),
      tenantWeight: this.store.weights.get(tenantId) ?? 1,
      status: o.status ?? "QUEUED",
      promptTokens: 5,
    });
    const h = new FakeHandle(completionId, tenantId, this.log);
    if (o.firstStart !== false) h.firstStart = payload;
    this.work.queue.push(h);
    return h;
  }

  /** Resolves once `probe` holds (checked every 2 ms); fails the test after `timeoutMs`. */
  async until(what: string, probe: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** The finalisation operations of one completion, in order, without its id. */
  finalisationOf(completionId: string): string[] {
    return this.log.filter((l) => l.endsWith(`:${completionId}`)).map((l) => l.split(":")[0]);
  }
}
