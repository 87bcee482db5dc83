import type { CompletionSpec, StreamedOutput } from "@lite/completions";
/**
 * Hand-written fakes of the engine's outward ports (ports.ts: the dispatcher, rows, token
 * streams, admission, usage, metrics), for engine-fakes.ts' EngineHarness. Each keeps what
 * it was told, in order, so a test asserts outcomes (what the stream holds, how the row
 * ended, which job completed) rather than calls; `Faults` makes any of them throw as a
 * service briefly away would.
 */
import type { FinishReason } from "@lite/core";
import type {
  AdmissionPort,
  CompletionRef,
  CompletionStore,
  EngineMetrics,
  FinalRow,
  JobPayload,
  ResumePoint,
  TokenOut,
  TokenSink,
  UsagePort,
  WorkHandle,
  WorkSource,
} from "../ports";

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
