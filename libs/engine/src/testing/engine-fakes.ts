import type { CompletionSpec, StreamedOutput } from "@lite/completions";
/**
 * Hand-written fakes of the engine's own ports (ports.ts), for unit tests that run without
 * PostgreSQL, Redis or onnxruntime. Each fake keeps what it was told, in order, so a test
 * asserts outcomes (what the stream holds, how the row ended, which job completed) rather
 * than calls. Tokens are a pure function of (completion, index), like the real model's
 * seeded decode, so a replay regenerates the same tokens.
 */
import type { FinishReason } from "@lite/core";
import type { SequenceSpec, StepOutput } from "@lite/model";
import pino, { type Logger } from "pino";
import { BatchEngine } from "../batch-engine";
import type { BatchEngineOptions } from "../engine-options";
import type {
  AdmissionPort,
  CompletionRef,
  CompletionStore,
  EngineBatch,
  EngineMetrics,
  EngineModel,
  FinalRow,
  JobPayload,
  ModelProvider,
  ResumePoint,
  TokenOut,
  TokenSink,
  UsagePort,
  WorkHandle,
  WorkSource,
} from "../ports";

/** The token a sequence produces at an index (deterministic, so replays match). */
export function tokenAt(completionId: string, index: number): TokenOut {
  let h = index * 31;
  for (const ch of completionId) h = (h * 33 + ch.charCodeAt(0)) % 9973;
  const tokenId = 97 + (h % 26);
  return { index, tokenId, text: String.fromCharCode(tokenId) };
}

/** never produced by tokenAt (its ids are 97..122) */
export const FAKE_EOS = 3;

/** Throws the next `n` calls of an operation (a service briefly away). */
export class Faults {
  private readonly left = new Map<string, number>();
  /** attempts that failed, by operation */
  readonly failed = new Map<string, number>();
  inject(op: string, n: number): void {
    this.left.set(op, (this.left.get(op) ?? 0) + n);
  }
  check(op: string): void {
    const n = this.left.get(op) ?? 0;
    if (n <= 0) return;
    this.left.set(op, n - 1);
    this.failed.set(op, (this.failed.get(op) ?? 0) + 1);
    throw Object.assign(new Error(`${op}: connect ECONNREFUSED`), { code: "ECONNREFUSED" });
  }
}

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

  async step(only?: Iterable<string>): Promise<StepOutput[]> {
    const ids = only ? [...only] : [...this.seqs.keys()];
    this.beforeStep?.(ids);
    this.steps.push(ids);
    if (this.stepGate) await this.stepGate();
    await Promise.resolve();
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

/** What a job's outcome was: completed, failed (with its reason), or still open. */
export class FakeHandle implements WorkHandle {
  lockLost = false;
  deferredFailure: string | null = null;
  firstStart?: JobPayload;
  completed = 0;
  failures: string[] = [];
  constructor(
    readonly completionId: string,
    readonly tenantId: string,
    private readonly log: string[],
  ) {}
  async complete(): Promise<void> {
    this.log.push(`complete:${this.completionId}`);
    this.completed++;
  }
  async fail(reason: string): Promise<void> {
    this.log.push(`fail:${this.completionId}`);
    this.failures.push(reason);
  }
  get done(): boolean {
    return this.completed > 0 || this.failures.length > 0;
  }
}

/** The dispatcher: hands out queued jobs in arrival order, skipping excluded tenants. */
export class FakeWork implements WorkSource {
  readonly queue: FakeHandle[] = [];
  /** the excluded tenants of every `next` call that found a job */
  readonly exclusions: string[][] = [];
  readonly cancelledIds = new Set<string>();
  readonly charged = new Map<string, number>();
  /** calls of `next` so far */
  calls = 0;
  /** awaited by each `next` call (its number, from 1) before it looks: a slow dispatcher */
  gate?: (call: number) => Promise<void>;
  constructor(private readonly faults: Faults) {}
  async next(excludeTenants: ReadonlySet<string>): Promise<WorkHandle | null> {
    const call = ++this.calls;
    if (this.gate) await this.gate(call);
    const k = this.queue.findIndex((h) => !excludeTenants.has(h.tenantId));
    if (k < 0) return null;
    this.exclusions.push([...excludeTenants].sort());
    return this.queue.splice(k, 1)[0];
  }
  async charge(charges: ReadonlyMap<string, number>): Promise<void> {
    this.faults.check("charge");
    for (const [t, c] of charges) this.charged.set(t, (this.charged.get(t) ?? 0) + c);
  }
  async cancelled(items: ReadonlyArray<CompletionRef>): Promise<Set<string>> {
    this.faults.check("cancelled");
    return new Set(items.filter((i) => this.cancelledIds.has(i.completionId)).map((i) => i.completionId));
  }
  async waitForWork(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }
}

/** The completion rows: a final row keeps its outcome (the guard of the real store). */
export class FakeStore implements CompletionStore {
  readonly rows = new Map<string, CompletionSpec>();
  readonly weights = new Map<string, number>();
  readonly finalised: FinalRow[] = [];
  readonly markedRunning: string[] = [];
  /** tier ids revoked from a tenant (every other tier counts as granted) */
  readonly revoked = new Map<string, Set<string>>();
  constructor(
    private readonly faults: Faults,
    private readonly log: string[],
  ) {}
  async ungrantedTiers(tenantId: string, tierIds: readonly string[]): Promise<string[]> {
    this.faults.check("grants");
    const revoked = this.revoked.get(tenantId);
    return tierIds.filter((id) => revoked?.has(id) ?? false);
  }
  async load(completionId: string): Promise<CompletionSpec | null> {
    this.faults.check("load");
    const row = this.rows.get(completionId);
    return row ? { ...row } : null;
  }
  async tenantWeight(tenantId: string): Promise<number> {
    return this.weights.get(tenantId) ?? 1;
  }
  async markRunning(completionId: string): Promise<void> {
    const row = this.rows.get(completionId);
    if (row?.status === "QUEUED") row.status = "RUNNING";
    this.markedRunning.push(completionId);
  }
  async finalise(f: FinalRow): Promise<void> {
    this.faults.check("finalise");
    this.log.push(`finalise:${f.completionId}`);
    this.finalised.push(f);
    const row = this.rows.get(f.completionId);
    if (row && (row.status === "QUEUED" || row.status === "RUNNING")) {
      Object.assign(row, {
        status: f.status,
        text: f.text,
        outputTokens: f.outputTokens,
        finishReason: f.finishReason,
      });
    }
  }
}

/** Token streams: idempotent by index, a final event that follows what the stream holds. */
export class FakeTokens implements TokenSink {
  readonly streams = new Map<string, TokenOut[]>();
  readonly done = new Map<string, { index: number; tokens: number; finishReason: FinishReason }>();
  /** every index the engine asked to append, by completion, in order (retries included) */
  readonly appended = new Map<string, number[]>();
  /** appends the real stream would refuse or misplace: after the final event, or past a gap */
  readonly violations: string[] = [];
  constructor(
    private readonly faults: Faults,
    private readonly log: string[],
  ) {}
  /** awaited by each `resumePoint` (a job's start checks) before it answers */
  resumeGate?: (completionId: string) => Promise<void>;
  async resumePoint(_tenantId: string, completionId: string): Promise<ResumePoint> {
    if (this.resumeGate) await this.resumeGate(completionId);
    this.faults.check("resumePoint");
    const tokens = [...(this.streams.get(completionId) ?? [])];
    const done = this.done.get(completionId);
    return done ? { tokens, finishReason: done.finishReason } : { tokens };
  }
  private lastIndex(completionId: string): number {
    const s = this.streams.get(completionId);
    return s && s.length > 0 ? s[s.length - 1].index : -1;
  }
  async append(batch: ReadonlyArray<CompletionRef & { tokens: TokenOut[] }>): Promise<void> {
    for (const b of batch) {
      const asked = this.appended.get(b.completionId) ?? [];
      this.appended.set(b.completionId, asked);
      for (const t of b.tokens) asked.push(t.index);
    }
    this.faults.check("append");
    for (const b of batch) {
      const s = this.streams.get(b.completionId) ?? [];
      this.streams.set(b.completionId, s);
      for (const t of b.tokens) {
        if (this.done.has(b.completionId)) this.violations.push(`${b.completionId}: ${t.index} after the final event`);
        const last = s.length > 0 ? s[s.length - 1].index : -1;
        if (t.index === last + 1) s.push(t);
        else if (t.index > last + 1) this.violations.push(`${b.completionId}: ${t.index} after ${last}`);
      }
    }
  }
  async streamed(_tenantId: string, completionId: string): Promise<StreamedOutput> {
    this.faults.check("streamed");
    return { outputTokens: this.streams.get(completionId)?.length ?? 0, text: this.text(completionId) };
  }
  async finish(tenantId: string, completionId: string, tokens: number, finishReason: FinishReason): Promise<void> {
    this.faults.check("finish");
    this.log.push(`finish:${completionId}`);
    if (this.done.has(completionId)) return;
    const index = Math.max(tokens, this.lastIndex(completionId) + 1);
    this.done.set(completionId, { index, tokens, finishReason });
  }
  text(completionId: string): string {
    return (this.streams.get(completionId) ?? []).map((t) => t.text).join("");
  }
}

export class FakeAdmission implements AdmissionPort {
  readonly progressed = new Map<string, number>();
  readonly settled = new Map<string, number>();
  constructor(private readonly log: string[]) {}
  async progress(items: ReadonlyArray<CompletionRef & { generatedTokens: number }>): Promise<void> {
    for (const i of items) this.progressed.set(i.completionId, i.generatedTokens);
  }
  async settle(_tenantId: string, completionId: string, generatedTokens: number): Promise<void> {
    this.log.push(`settle:${completionId}`);
    this.settled.set(completionId, generatedTokens);
  }
}

export class FakeUsage implements UsagePort {
  readonly records: Array<Parameters<UsagePort["record"]>[0]> = [];
  constructor(
    private readonly faults: Faults,
    private readonly log: string[],
  ) {}
  async record(u: Parameters<UsagePort["record"]>[0]): Promise<void> {
    this.faults.check("usage");
    this.log.push(`usage:${u.completionId}`);
    this.records.push(u);
  }
}

export interface JobOptions {
  maxTokens?: number;
  /** false: a replay or retry (the engine reads the row instead of the payload) */
  firstStart?: boolean;
  status?: CompletionSpec["status"];
  modelName?: string;
}

/** prom-client's label argument, as the engine passes it (an object of labels), or none. */
type LabelArg = Partial<Record<string, string | number>> | number | undefined;

/** The engine's metric calls, summed: output tokens per tenant, TTFT observations, finished completions. */
export class FakeMetrics implements EngineMetrics {
  readonly tokens = new Map<string, number>();
  /** tokensGenerated.inc calls (the engine makes one per tenant and step) */
  tokenUpdates = 0;
  readonly ttfts: string[] = [];
  readonly finished: string[] = [];
  steps = 0;
  readonly tokensGenerated = {
    inc: ((labels: LabelArg, value?: number) => {
      if (typeof labels !== "object") throw new Error("tokensGenerated without a tenant label");
      this.tokenUpdates++;
      const t = String(labels.tenant);
      this.tokens.set(t, (this.tokens.get(t) ?? 0) + (value ?? 1));
    }) as EngineMetrics["tokensGenerated"]["inc"],
  };
  readonly ttftSeconds = {
    observe: ((labels: LabelArg) => {
      if (typeof labels === "object") this.ttfts.push(String(labels.tenant));
    }) as EngineMetrics["ttftSeconds"]["observe"],
  };
  readonly completionsFinished = {
    inc: ((labels: LabelArg) => {
      if (typeof labels === "object") this.finished.push(String(labels.tenant));
    }) as EngineMetrics["completionsFinished"]["inc"],
  };
  readonly decodeStepSeconds = {
    observe: (() => void this.steps++) as EngineMetrics["decodeStepSeconds"]["observe"],
  };
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
