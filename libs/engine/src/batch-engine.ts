import type { DecodeBatch, ModelRuntime, SequenceSpec, StepOutput } from "@lite/model";
import { deriveRoutingSeed } from "@lite/model";
import type { WorkerMetrics } from "@lite/telemetry";
import type { Logger } from "pino";
import type {
  AdmissionPort,
  CompletionSpec,
  CompletionStore,
  FinishReason,
  TokenOut,
  TokenSink,
  UsagePort,
  WorkHandle,
  WorkSource,
} from "./ports";
import { withRetry, sleep } from "./retry";
import { SlotAllocator } from "./slot-allocator";

/**
 * The worker's continuous-batching loop.
 *
 * 1. Fill: while fewer than `batchSize + reserve` sequences are held, ask the dispatcher
 *    for the next job (the ready tenant with the smallest weighted virtual time, across
 *    workers), skipping tenants that already hold `batchSize` sequences here, so the
 *    reserve is always open to another tenant's work.
 * 2. Start a job: load its row; a final row (the job was replayed after this or another
 *    worker finished it) only re-runs the idempotent tail of finalisation. Otherwise add
 *    the sequence to the model's DecodeBatch with its routing seed
 *    deriveRoutingSeed(tenant, seed), and read the stream's last index: a re-dispatched
 *    job replays deterministically from token 0 and emits only indices after it.
 * 3. Step: the slot allocator gives at most `batchSize` slots by per-tenant weighted
 *    virtual tokens (token-level fairness, see slot-allocator.ts); the step advances
 *    those sequences one token.
 * 4. Flush the step, retrying until it succeeds: append the new tokens of every
 *    completion (one round trip), Admission.progress, and charge the dispatcher the
 *    cost-weighted tokens per tenant. Then one round trip asks which held completions
 *    were cancelled: cancellation is observed within one step.
 * 5. A finished (or cancelled, or failed) sequence leaves the batch and is finalised in
 *    the background: usage events (idempotent) → row (status, text, finish reason) →
 *    stream's final event → Admission.settle → job complete. Each part retries with
 *    backoff; the job's lock keeps being extended until it completes, so a job is never
 *    lost while PostgreSQL or Redis is briefly away.
 * 6. Locks of held jobs are renewed by the scheduler in the background until complete
 *    or fail. A job whose lock was lost (this worker stalled and another took it) is
 *    dropped here; replay makes the other worker's output identical.
 * 7. stop(): take no new jobs, run held sequences to the end (up to `shutdownGraceMs`;
 *    after it, leave the rest: their locks lapse and another worker resumes them), wait
 *    for finalisations, return.
 */

export interface ModelProvider {
  get(modelName: string): Promise<ModelRuntime>;
}

export interface BatchEngineOptions {
  workerId: string;
  /** sequences per decode step (WORKER_BATCH_SIZE, default 16) */
  batchSize: number;
  /** extra sequences held beyond the batch, open to tenants not at their cap (default max(2, batchSize/4)) */
  reserve?: number;
  /** how long the idle loop waits for work before polling again, ms (default 200) */
  idlePollMs?: number;
  /** give sequences that have not run yet a small step of their own (default true) */
  firstTokenSteps?: boolean;
  /** how often a busy worker looks for newly queued work, ms (default 10) */
  fillPollMs?: number;
  /** how long stop() lets running sequences finish, ms (default 30000) */
  shutdownGraceMs?: number;
  /** pause after each decode step, ms (default 0; tests use it to make completions last) */
  stepDelayMs?: number;
  /**
   * Benchmark baseline: no fairness in the worker either. Hold at most batchSize
   * sequences, no per-tenant cap, every held sequence steps (arrival order).
   */
  fifo?: boolean;
}

export interface BatchEngineDeps {
  models: ModelProvider;
  work: WorkSource;
  store: CompletionStore;
  tokens: TokenSink;
  admission: AdmissionPort;
  usage: UsagePort;
  metrics?: WorkerMetrics;
  logger: Logger;
  now?: () => number;
}

/** What finalisation needs: a running sequence, or a job refused before it ran. */
type Outcome = Pick<Running, "handle" | "spec" | "tokenIds" | "text" | "expertCalls">;

interface Running {
  handle: WorkHandle;
  spec: CompletionSpec;
  batch: DecodeBatch;
  order: number;
  /** the stream already holds indices 0..resumeAfter (a replay emits only after it) */
  resumeAfter: number;
  tokenIds: number[];
  text: string[];
  expertCalls: Record<string, number>;
  firstEmitted: boolean;
}

export class BatchEngine {
  private readonly running = new Map<string, Running>();
  /** jobs being finalised (locks still extended until complete) */
  private readonly finalising = new Map<string, WorkHandle>();
  private readonly finalisations = new Set<Promise<void>>();
  private readonly batches = new Map<string, DecodeBatch>();
  private readonly allocator = new SlotAllocator();
  private readonly reserve: number;
  private stopping = false;
  /** wakes the idle loop when a job was started */
  private wake?: () => void;
  /** the background filler loop */
  private filler?: Promise<void>;
  /** jobs taken from the dispatcher and being started */
  private starting = 0;
  /** the previous step's flush (its tokens, progress, charges and cancel check) */
  private pendingFlush?: Promise<Set<string>>;
  private stopDeadline = Infinity;
  private order = 0;
  private loop?: Promise<void>;
  private readonly now: () => number;
  /** steps and tokens, for the process' own logs and the overhead benchmark */
  readonly stats = { steps: 0, tokens: 0, stepMs: 0, flushMs: 0, fillMs: 0, idleMs: 0 };

  constructor(
    private readonly opts: BatchEngineOptions,
    private readonly deps: BatchEngineDeps,
  ) {
    this.reserve = opts.fifo ? 0 : (opts.reserve ?? Math.max(2, Math.ceil(opts.batchSize / 4)));
    this.now = deps.now ?? (() => Date.now());
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops taking jobs, lets running sequences finish (bounded), waits for finalisations. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopDeadline = this.now() + (this.opts.shutdownGraceMs ?? 30000);
    }
    await this.loop;
  }

  private get limit(): number {
    return this.opts.batchSize + this.reserve;
  }

  get held(): number {
    return this.running.size;
  }

  private async run(): Promise<void> {
    const log = this.deps.logger;
    let lastStats = { at: performance.now(), ...this.stats };
    while (true) {
      if (performance.now() - lastStats.at >= 10000) {
        const now = { at: performance.now(), ...this.stats };
        const d = (k: keyof typeof this.stats) => now[k] - lastStats[k];
        if (d("steps") > 0) {
          log.info(
            {
              seconds: Math.round((now.at - lastStats.at) / 100) / 10,
              steps: d("steps"),
              tokens: d("tokens"),
              tokensPerSecond: Math.round((d("tokens") * 1000) / (now.at - lastStats.at)),
              stepMsAvg: +(d("stepMs") / d("steps")).toFixed(2),
              flushMsAvg: +(d("flushMs") / d("steps")).toFixed(2),
              fillMs: Math.round(d("fillMs")),
              idleMs: Math.round(d("idleMs")),
              held: this.running.size,
            },
            "engine stats",
          );
        }
        lastStats = now;
      }
      if (this.stopping && (this.running.size === 0 || this.now() > this.stopDeadline)) break;
      try {
        // The filler runs beside the decode steps (its round trips overlap the compute).
        if (!this.stopping) this.filler ??= this.fillLoop();
        this.dropLostJobs();
        if (this.running.size === 0) {
          await this.flushed();
          const t0 = performance.now();
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 50);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = undefined;
          this.stats.idleMs += performance.now() - t0;
          continue;
        }
        await this.step();
      } catch (e) {
        // Transient (Redis/PostgreSQL away): nothing is lost, the loop retries.
        log.warn({ err: errText(e) }, "engine loop error, retrying");
        await sleep(200);
      }
    }
    await this.flushed().catch(() => undefined);
    if (this.filler) await this.filler;
    if (this.running.size > 0) {
      log.warn(
        { left: this.running.size },
        "shutdown grace over: leaving running jobs to be resumed by another worker",
      );
      for (const r of this.running.values()) r.batch.remove(r.spec.completionId);
      this.running.clear();
    }
    // Finalisations retry while PostgreSQL or Redis is away, but not past the grace: what is
    // left stays in its queue and is finished (idempotently) by the next worker.
    const left = Math.max(0, this.stopDeadline - this.now());
    await Promise.race([Promise.allSettled([...this.finalisations]), sleep(Math.min(left, 60000))]);
    if (this.finalisations.size > 0) {
      log.warn(
        { left: this.finalisations.size },
        "finalisations still retrying at shutdown: leaving them to the next worker",
      );
    }
  }

  // 1. fill free slots, continuously: a job that arrives mid-step is started during that step
  private async fillLoop(): Promise<void> {
    while (!this.stopping) {
      const before = this.running.size + this.starting;
      if (before < this.limit) {
        try {
          await this.fill();
        } catch (e) {
          this.deps.logger.warn({ err: errText(e) }, "fill failed, retrying");
          await sleep(200);
        }
      }
      const idle = this.running.size === 0 && this.starting === 0;
      await this.deps.work.waitForWork(idle ? (this.opts.idlePollMs ?? 10) : (this.opts.fillPollMs ?? 10));
    }
  }

  private async fill(): Promise<void> {
    const limit = this.limit;
    if (this.running.size >= limit) return;
    const t0 = performance.now();
    const held = new Map<string, { n: number; weight: number }>();
    for (const r of this.running.values()) {
      const h = held.get(r.spec.tenantId);
      if (h) h.n++;
      else held.set(r.spec.tenantId, { n: 1, weight: r.spec.tenantWeight });
    }
    const handles: WorkHandle[] = [];
    const taken = new Map<string, number>();
    while (this.running.size + handles.length < limit) {
      const excluded = this.opts.fifo ? new Set<string>() : this.overCap(held, taken);
      const handle = await this.deps.work.next(excluded);
      if (!handle) break;
      handles.push(handle);
      taken.set(handle.tenantId, (taken.get(handle.tenantId) ?? 0) + 1);
    }
    // Start them together: each start is a few round trips to PostgreSQL and Redis.
    this.starting += handles.length;
    try {
      await Promise.all(handles.map((h) => this.startJob(h).finally(() => this.starting--)));
    } finally {
      this.stats.fillMs += performance.now() - t0;
    }
  }

  /**
   * Tenants at their hold cap: a tenant may hold its weighted share of the batch plus one,
   * ceil(batchSize × weight ÷ Σ weights of the tenants held) + 1, at most batchSize —
   * enough for its share of every step's slots with one spare, so a tenant that fell
   * behind (a sequence of it just finished) can catch up in the following steps. A tenant not held yet (weight unknown
   * until its row is read) may take ceil(batchSize ÷ (tenants held + 1)) in one fill.
   */
  private overCap(held: Map<string, { n: number; weight: number }>, taken: Map<string, number>): Set<string> {
    const b = this.opts.batchSize;
    let total = 0;
    for (const h of held.values()) total += h.weight;
    const out = new Set<string>();
    for (const [t, h] of held) {
      const cap = Math.min(b, Math.ceil((b * h.weight) / total) + 1);
      if (h.n + (taken.get(t) ?? 0) >= cap) out.add(t);
    }
    const newcomerCap = Math.max(1, Math.ceil(b / (held.size + 1)));
    for (const [t, n] of taken) if (!held.has(t) && n >= newcomerCap) out.add(t);
    return out;
  }

  // 2. start one job
  private async startJob(handle: WorkHandle): Promise<void> {
    const log = this.deps.logger.child({ completionId: handle.completionId, tenantId: handle.tenantId });
    // The same completion dispatched again to this worker: its lock lapsed (e.g. Redis was
    // away) and the stalled check handed it back. The new dispatch supersedes the old one,
    // which replays from the stream's last index like any resumed job.
    const stale = this.running.get(handle.completionId);
    if (stale) {
      log.warn("re-dispatched while held here (its lock lapsed): restarting it from the stream");
      this.detach(stale);
    }
    // A first start runs from the job's payload (no row read on the hot path); a replay or
    // retry reads the row, which may already be final.
    const first = handle.firstStart;
    const spec = await withRetry(
      async (): Promise<CompletionSpec | null> =>
        first
          ? {
              completionId: first.completionId,
              tenantId: first.tenantId,
              tenantWeight: await this.deps.store.tenantWeight(first.tenantId),
              modelName: first.modelName,
              status: "QUEUED",
              prompt: first.prompt,
              promptTokens: Buffer.byteLength(first.prompt, "utf8"),
              maxTokens: first.maxTokens,
              temperature: first.temperature,
              seed: first.seed,
              mode: first.mode,
              tierSet: first.tierIds,
              costWeight: first.costWeight,
              createdAt: new Date(first.enqueuedAtMs),
            }
          : this.deps.store.load(handle.completionId),
      { onError: (e) => void log.warn({ err: errText(e) }, "load completion failed, retrying") },
    );
    if (!spec || spec.tenantId !== handle.tenantId) {
      log.error("job names no completion of its tenant; failing it");
      await handle.fail("completion row not found").catch(() => undefined);
      return;
    }
    if (spec.status === "COMPLETED" || spec.status === "CANCELLED" || spec.status === "FAILED") {
      // Already final: only the idempotent tail (stream end, settle, complete) may be missing.
      this.track(handle, async () => {
        await this.retrying(() =>
          this.deps.tokens.finish(
            spec.tenantId,
            spec.completionId,
            spec.outputTokens ?? 0,
            spec.finishReason ?? "ERROR",
          ),
        );
        await this.retrying(() => this.deps.admission.settle(spec.tenantId, spec.completionId, spec.outputTokens ?? 0));
        await this.retrying(() => handle.complete(), handle);
      });
      return;
    }
    if (handle.deferredFailure) {
      log.error({ reason: handle.deferredFailure }, "job stalled too often; failing it");
      this.finish(
        { handle, spec, tokenIds: [], text: [], expertCalls: {} },
        "ERROR",
        `stalled too often: ${handle.deferredFailure}`,
      );
      return;
    }
    const [cancelled, resumeAfter] = await withRetry(
      () =>
        Promise.all([
          this.deps.work.cancelled([{ tenantId: spec.tenantId, completionId: spec.completionId }]),
          this.deps.tokens.lastIndex(spec.tenantId, spec.completionId),
        ]),
      { onError: (e) => void log.warn({ err: errText(e) }, "start checks failed, retrying") },
    );
    if (cancelled.has(spec.completionId)) {
      this.finish({ handle, spec, tokenIds: [], text: [], expertCalls: {} }, "CANCELLED");
      return;
    }
    let batch: DecodeBatch;
    try {
      const model = await this.deps.models.get(spec.modelName);
      batch = this.batchFor(spec.modelName, model);
      const seq: SequenceSpec = {
        id: spec.completionId,
        tenantId: spec.tenantId,
        promptTokens: model.tokenizer.encode(spec.prompt),
        routingSeed: deriveRoutingSeed(spec.tenantId, spec.seed),
        tierIds: spec.tierSet,
        temperature: spec.temperature,
        maxTokens: spec.maxTokens,
      };
      batch.add(seq);
    } catch (e) {
      log.error({ err: errText(e) }, "cannot run completion; failing it");
      this.finish({ handle, spec, tokenIds: [], text: [], expertCalls: {} }, "ERROR", errText(e));
      return;
    }
    if (spec.status === "QUEUED") {
      // In the background: finalise only touches a live row, so a late RUNNING never wins.
      const at = new Date(this.now());
      void this.retrying(() => this.deps.store.markRunning(spec.completionId, at)).catch(() => undefined);
    }
    this.running.set(spec.completionId, {
      handle,
      spec,
      batch,
      order: this.order++,
      resumeAfter,
      tokenIds: [],
      text: [],
      expertCalls: {},
      firstEmitted: resumeAfter >= 0,
    });
    this.wake?.();
    if (resumeAfter >= 0)
      log.info(
        { resumeAfter },
        "resuming a re-dispatched completion: replaying, emitting after the last streamed index",
      );
  }

  private batchFor(modelName: string, _model: ModelRuntime): DecodeBatch {
    let b = this.batches.get(modelName);
    if (!b) {
      b = _model.createBatch();
      this.batches.set(modelName, b);
    }
    return b;
  }

  // 3–5. one decode step
  private async step(): Promise<void> {
    const all = [...this.running.values()];
    // The allocator decides who advances this round (token-level fairness).
    const chosen = this.allocator.pick(
      all.map((r) => ({
        id: r.spec.completionId,
        tenantId: r.spec.tenantId,
        weight: r.spec.tenantWeight,
        cost: r.spec.costWeight,
        order: r.order,
      })),
      this.opts.batchSize,
    );
    // First tokens first: chosen sequences that have not run yet take a small step of their
    // own (a few ms) before the rest, so a newly arrived tenant's time to first token does
    // not pay for a full batch. Who advances, and by how much, is the allocator's choice.
    if (this.opts.firstTokenSteps !== false) {
      const fresh = chosen.filter((id) => {
        const r = this.running.get(id)!;
        return r.tokenIds.length === 0 && r.resumeAfter < 0;
      });
      if (fresh.length > 0 && fresh.length < chosen.length) {
        const freshSet = new Set(fresh);
        await this.advance(fresh);
        await this.advance(chosen.filter((id) => !freshSet.has(id) && this.running.has(id)));
        return;
      }
    }
    await this.advance(chosen);
  }

  /** One decode step over these held sequences, then its flush (overlapping the next step). */
  private async advance(chosen: string[]): Promise<void> {
    if (chosen.length === 0) return;
    const byBatch = new Map<DecodeBatch, string[]>();
    for (const id of chosen) {
      const r = this.running.get(id)!;
      const list = byBatch.get(r.batch);
      if (list) list.push(id);
      else byBatch.set(r.batch, [id]);
    }
    const started = performance.now();
    const outputs: StepOutput[] = [];
    for (const [batch, ids] of byBatch) outputs.push(...(await batch.step(ids)));
    const stepMs = performance.now() - started;
    this.stats.steps++;
    this.stats.stepMs += stepMs;
    this.deps.metrics?.decodeStepSeconds.observe(stepMs / 1000);

    const appends: Array<{ tenantId: string; completionId: string; tokens: TokenOut[] }> = [];
    const progress: Array<{ tenantId: string; completionId: string; generatedTokens: number }> = [];
    const charges = new Map<string, number>();
    const finished: Array<{ r: Running; reason: FinishReason }> = [];
    const nowMs = this.now();
    for (const o of outputs) {
      const r = this.running.get(o.id);
      if (!r) continue;
      r.tokenIds.push(o.tokenId);
      r.text.push(o.text);
      for (const [tier, n] of Object.entries(o.expertCalls)) r.expertCalls[tier] = (r.expertCalls[tier] ?? 0) + n;
      const cost = r.spec.costWeight;
      this.allocator.charge(r.spec.tenantId, cost, r.spec.tenantWeight);
      charges.set(r.spec.tenantId, (charges.get(r.spec.tenantId) ?? 0) + cost);
      if (o.index > r.resumeAfter) {
        appends.push({
          tenantId: r.spec.tenantId,
          completionId: r.spec.completionId,
          tokens: [{ index: o.index, tokenId: o.tokenId, text: o.text }],
        });
        progress.push({ tenantId: r.spec.tenantId, completionId: r.spec.completionId, generatedTokens: o.index + 1 });
        if (!r.firstEmitted) {
          r.firstEmitted = true;
          this.deps.metrics?.ttftSeconds.observe(
            { tenant: r.spec.tenantId },
            Math.max(0, nowMs - r.spec.createdAt.getTime()) / 1000,
          );
        }
      }
      if (o.finished) finished.push({ r, reason: o.finishReason ?? "LENGTH" });
    }
    // Finished sequences leave the batch now; they are finalised once their tokens are flushed.
    for (const { r } of finished) this.detach(r);

    // The previous step's flush ran during this step's compute. Its cancel check names
    // completions whose token from THIS step must not be emitted: drop it, end them.
    const cancelled = await this.flushed();
    for (const id of cancelled) {
      const r = this.running.get(id) ?? finished.find((f) => f.r.spec.completionId === id)?.r;
      if (!r) continue;
      const k = appends.findIndex((a) => a.completionId === id);
      if (k >= 0) {
        appends.splice(k, 1);
        const p = progress.findIndex((x) => x.completionId === id);
        if (p >= 0) progress.splice(p, 1);
        r.tokenIds.pop();
        r.text.pop();
      }
      const f = finished.findIndex((x) => x.r === r);
      if (f >= 0) finished.splice(f, 1);
      else this.detach(r);
      this.finish(r, "CANCELLED");
    }

    // This step's flush, one round trip, overlapping the next step's compute: tokens,
    // admission progress, the dispatcher's charge, and which held completions were
    // cancelled. A replaying sequence (not yet past what the stream holds) is not cancelled
    // mid-replay: its final event must follow what is already streamed.
    const live = [...this.running.values()].filter((r) => r.tokenIds.length >= r.resumeAfter + 1);
    const t0 = performance.now();
    this.pendingFlush = this.retrying(() =>
      Promise.all([
        Promise.all([
          appends.length > 0 ? this.deps.tokens.append(appends) : undefined,
          progress.length > 0 ? this.deps.admission.progress(progress) : undefined,
          charges.size > 0 ? this.deps.work.charge(charges) : undefined,
        ]),
        live.length > 0
          ? this.deps.work.cancelled(
              live.map((r) => ({ tenantId: r.spec.tenantId, completionId: r.spec.completionId })),
            )
          : new Set<string>(),
      ]),
    ).then(([, c]) => {
      this.stats.flushMs += performance.now() - t0;
      this.stats.tokens += appends.length;
      for (const a of appends) this.deps.metrics?.tokensGenerated.inc({ tenant: a.tenantId });
      for (const { r, reason } of finished) this.finish(r, reason);
      return c;
    });
    this.allocator.retain(new Set([...this.running.values()].map((r) => r.spec.tenantId)));
    if (this.opts.stepDelayMs) await sleep(this.opts.stepDelayMs);
  }

  /** Waits for the pending flush; returns the completions it found cancelled. */
  private async flushed(): Promise<Set<string>> {
    const p = this.pendingFlush;
    this.pendingFlush = undefined;
    return p ? p : new Set<string>();
  }

  private detach(r: Running): void {
    r.batch.remove(r.spec.completionId);
    this.running.delete(r.spec.completionId);
  }

  // 5. finalisation, in the background
  private finish(r: Outcome, reason: FinishReason, error?: string): void {
    const { spec, handle } = r;
    const status = reason === "CANCELLED" ? "CANCELLED" : reason === "ERROR" ? "FAILED" : "COMPLETED";
    const outputTokens = r.tokenIds.length;
    const text = r.text.join("");
    this.deps.metrics?.completionsFinished.inc({ tenant: spec.tenantId, reason });
    this.track(handle, async () => {
      const finishedAt = new Date(this.now());
      await this.retrying(() =>
        this.deps.usage.record({
          tenantId: spec.tenantId,
          completionId: spec.completionId,
          inputTokens: spec.promptTokens,
          outputTokens,
          expertCallsByTier: r.expertCalls,
          mode: spec.mode,
          occurredAt: finishedAt,
        }),
      );
      await this.retrying(() =>
        this.deps.store.finalise({
          completionId: spec.completionId,
          status,
          finishReason: reason,
          text,
          outputTokens,
          error,
          finishedAt,
        }),
      );
      await this.retrying(() => this.deps.tokens.finish(spec.tenantId, spec.completionId, outputTokens, reason));
      await this.retrying(() => this.deps.admission.settle(spec.tenantId, spec.completionId, outputTokens));
      await this.retrying(() => (status === "FAILED" ? handle.fail(error ?? "failed") : handle.complete()), handle);
    });
  }

  private track(handle: WorkHandle, work: () => Promise<void>): void {
    this.finalising.set(handle.completionId, handle);
    const p = work()
      .catch((e) =>
        this.deps.logger.error(
          { completionId: handle.completionId, err: errText(e) },
          "finalisation gave up; the job stays queued",
        ),
      )
      .finally(() => {
        this.finalising.delete(handle.completionId);
        this.finalisations.delete(p);
      });
    this.finalisations.add(p);
  }

  /**
   * Retries a transient operation until it succeeds. With a handle: stops once the job's
   * lock is lost — the worker that holds the job now redoes the (idempotent) work.
   */
  private retrying<T>(op: () => Promise<T>, handle?: WorkHandle): Promise<T> {
    return withRetry(op, {
      aborted: () => (handle?.lockLost ?? false) || (this.stopping && this.now() > this.stopDeadline),
      onError: (e, attempt) => {
        if (attempt === 1 || attempt % 20 === 0)
          this.deps.logger.warn({ err: errText(e), attempt }, "transient failure, retrying");
      },
    });
  }

  // 6. locks: the scheduler renews them in the background; a job whose lock was lost
  // (this worker stalled and another took it over) is dropped here.
  private dropLostJobs(): void {
    for (const r of [...this.running.values()]) {
      if (!r.handle.lockLost) continue;
      this.deps.logger.warn(
        { completionId: r.spec.completionId },
        "lost the job's lock (another worker owns it): dropping it here",
      );
      this.detach(r);
    }
  }
}

export function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
