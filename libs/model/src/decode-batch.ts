import { badInput } from "@lite/core";
import { forwardPass, type PassSequence } from "./forward-pass";
import type { ModelCore } from "./model-core";
import { newSequenceState } from "./sequence-state";
import { sampleToken } from "./token-sampler";
import type {
  DecodeBatch,
  SequenceSpec,
  SequenceState,
  SequenceWait,
  StepOptions,
  StepOutput,
  StepTimings,
} from "./decode-batch.types";

/**
 * A continuous batch: sequences join and leave between steps; each step advances every
 * unfinished sequence by one token (its first step also prefills the prompt).
 *
 * With parking (ModelRuntimeOptions.parkColdExperts, the worker's batch) a sequence may sit
 * out steps without holding up the others (`waiting`):
 *   - parked: an expert it needs was not HOT. The step produced nothing for it and did not
 *     advance it; its load runs off the step. It keeps where its pass stopped (the layer, its
 *     rows' hidden state: a resume point) and the experts and calls of the layers it passed.
 *     Once the load settles it steps again from that layer, not from layer 0, and produces
 *     the token it would have produced unparked (forward-pass.ts); so a token needs one
 *     layer's experts HOT at a time, never all its layers' at once. A failed load ends it:
 *     its next step returns an output with finishReason ERROR, `error` and no token; so does
 *     a layer whose experts can never be HOT together for its tenant (QUOTA_EXCEEDED naming
 *     hotMemoryBytes or warmMemoryBytes, expert-parking.ts) instead of loading forever.
 *   - held: the timing defence (timing-defence.ts) owes its token a pad. The token was
 *     computed and the sequence advanced; the output is returned by the first step that
 *     includes it once the pad is over, and it computes nothing more until then.
 *   kv: its tenant's KV quota (kv-ledger.ts) has no room for it now: it holds no KV (not
 *     started, or paused: its KV dropped so that an older sequence of the same tenant could
 *     grow; a parked one loses its resume point with its KV) and steps, by one prefill of
 *     prompt + tokens so far, once its tenant's KV allows.
 *     That prefill computes every row as before (the resume path), so it produces the tokens
 *     an unpaused run would. A sequence that alone outgrows its tenant's quota ends: LENGTH
 *     with no token, or ERROR naming kvCacheBytes when it has produced nothing.
 * `whenReady` resolves when a waiting sequence may step again.
 */

export type {
  DecodeBatch,
  SequenceSpec,
  SequenceWait,
  StepOptions,
  StepOutput,
  StepTimings,
} from "./decode-batch.types";

export class DecodeBatchImpl implements DecodeBatch {
  private readonly seqs = new Map<string, SequenceState>();
  private stepping = false;
  /** a step's `betweenLayers` hook is running: it may step other sequences (StepOptions) */
  private betweenLayers = false;
  /** resolvers of `whenReady` calls, woken together */
  private readyWaiters: Array<() => void> = [];
  /** while someone waits: the ledger's wake-up (another sequence of a tenant finished or paused) */
  private unlisten: (() => void) | undefined;
  lastStepTimings: StepTimings | undefined;

  constructor(private readonly core: ModelCore) {}

  get size(): number {
    return this.seqs.size;
  }

  add(spec: SequenceSpec): void {
    if (!spec.id) throw badInput("id", "must not be empty");
    if (this.seqs.has(spec.id)) throw badInput("id", `sequence ${spec.id} is already in the batch`);
    const state = newSequenceState(this.core, spec);
    this.seqs.set(spec.id, state);
    this.core.kv.register(state.member);
  }

  remove(id: string): void {
    const s = this.seqs.get(id);
    if (!s) return;
    if (s.held) clearTimeout(s.held.timer);
    s.kv.release();
    this.seqs.delete(id);
    this.core.kv.unregister(s.member);
  }

  waiting(id: string): SequenceWait | undefined {
    const s = this.seqs.get(id);
    return s === undefined ? undefined : this.waitOf(s);
  }

  private waitOf(s: SequenceState): SequenceWait | undefined {
    if (s.parked) return "load";
    if (s.held) return this.core.defence.clock.nowMs() < s.held.untilMs ? "pad" : undefined;
    if (s.failure === undefined && this.core.kv.blocked(s.member)) return "kv";
    return undefined;
  }

  whenReady(): Promise<void> {
    const steppable = [...this.seqs.values()].some(
      (s) => !this.isWaiting(s) && (s.failure !== undefined || s.held !== undefined || !s.finished),
    );
    if (steppable) return Promise.resolve();
    this.unlisten ??= this.core.kv.onChange(() => this.wakeWaiters());
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private isWaiting(s: SequenceState): boolean {
    return this.waitOf(s) !== undefined;
  }

  private wakeWaiters(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    this.unlisten?.();
    this.unlisten = undefined;
    for (const wake of waiters) wake();
  }

  kvBytes(id: string): number {
    return this.seqs.get(id)?.kv.bytes() ?? 0;
  }

  async step(only?: Iterable<string>, opts: StepOptions = {}): Promise<StepOutput[]> {
    if (this.stepping && !this.betweenLayers) throw new Error("decode-batch: step() called while a step is running");
    // A step from a pass's betweenLayers hook (StepOptions): the pass's sequences are not its.
    const nested = this.stepping;
    this.stepping = true;
    const started = performance.now();
    try {
      const subset = only === undefined ? undefined : new Set(only);
      const chosen = [...this.seqs.values()].filter((s) => subset === undefined || subset.has(s.spec.id));
      if (nested && chosen.some((s) => s.inPass))
        throw new Error("decode-batch: a step between a pass's layers cannot step a sequence of that pass");
      // Outputs that need no pass: a failure to report, a held token whose pad is over.
      const nowMs = this.core.defence.clock.nowMs();
      const ready = new Map<SequenceState, StepOutput>();
      const running: SequenceState[] = [];
      for (const s of chosen) {
        if (s.failure !== undefined) ready.set(s, this.failedOutput(s));
        else if (s.held) {
          if (nowMs >= s.held.untilMs) ready.set(s, this.releaseHeld(s));
        } else if (!s.finished && !s.parked) running.push(s);
      }
      // The tenants' KV quotas: who steps, who pauses (drops its KV), who has outgrown its quota.
      // Between a pass's layers, that pass's sequences count as stepping and nothing pauses:
      // a sequence in the middle of its pass keeps its KV (kv-ledger.ts planBetweenLayers).
      const members = running.map((s) => s.member);
      const plan = nested
        ? this.core.kv.planBetweenLayers(
            members,
            [...this.seqs.values()].filter((s) => s.inPass).map((s) => s.member),
          )
        : this.core.kv.plan(members);
      const stepping = running.filter((s) => plan.run.has(s.member));
      for (const s of running) if (plan.outgrown.has(s.member)) ready.set(s, this.outgrownOutput(s));
      const hook = nested ? undefined : opts.betweenLayers;
      const computed =
        stepping.length > 0 ? await this.advance(stepping, started, hook) : new Map<SequenceState, StepOutput>();
      return chosen.flatMap((s) => ready.get(s) ?? computed.get(s) ?? []);
    } finally {
      if (!nested) this.stepping = false;
    }
  }

  /** One forward pass over these sequences: the outputs to return now (not those parked or held). */
  private async advance(
    running: SequenceState[],
    started: number,
    betweenLayers?: () => Promise<void>,
  ): Promise<Map<SequenceState, StepOutput>> {
    const { defence } = this.core;
    const attemptMs = defence.clock.nowMs();
    for (const s of running) s.attemptStartedMs ??= attemptMs;
    const layers = this.core.arch.layers;
    const pass: PassSequence[] = running.map((s) => ({
      tenantId: s.spec.tenantId,
      seed: s.spec.routingSeed,
      activeTiers: s.activeTiers,
      kv: s.kv,
      tokens: s.tokens.slice(s.processed),
      firstPos: s.processed,
      promptRows: s.promptRows,
      resume: s.resume?.point,
      experts: s.resume?.experts ?? Array.from({ length: layers }, () => new Set<string>()),
      expertCalls: s.resume?.expertCalls ?? new Map(),
      padTiers: new Set(),
      waited: s.waited,
      prefetch: { id: s.spec.id, live: () => !s.finished && this.seqs.get(s.spec.id) === s },
    }));
    for (const s of running) s.inPass = true;
    const hook = betweenLayers
      ? async () => {
          this.betweenLayers = true;
          try {
            await betweenLayers();
          } finally {
            this.betweenLayers = false;
          }
        }
      : undefined;
    const { logits, logitsRow, firstUses, timings } = await forwardPass(this.core, pass, {
      park: this.core.parkColdExperts,
      ...(hook ? { betweenLayers: hook } : {}),
    }).finally(() => {
      for (const s of running) s.inPass = false;
    });
    defence.notePaddedFirstUses(firstUses);
    const outputs = new Map<SequenceState, StepOutput>();
    running.forEach((s, i) => {
      for (const t of pass[i].padTiers) s.padTiers.add(t);
      if (logitsRow[i] < 0) {
        const p = pass[i];
        s.resume = { point: p.parkedAt!, experts: p.experts, expertCalls: p.expertCalls };
        this.park(s, p.parked!);
        return;
      }
      s.resume = undefined;
      const output = this.sample(s, pass[i], logits, logitsRow[i]);
      const untilMs = s.attemptStartedMs! + defence.padMs(s.padTiers);
      s.attemptStartedMs = undefined;
      s.padTiers.clear();
      s.waited.clear();
      if (defence.clock.nowMs() < untilMs) this.hold(s, output, untilMs);
      else outputs.set(s, output);
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
  }

  /** Samples the sequence's next token from its logits row and advances it. */
  private sample(s: SequenceState, pass: PassSequence, logits: Float32Array, row: number): StepOutput {
    const vocab = this.core.arch.vocabSize;
    const { eos } = this.core.tokenizer;
    s.processed = s.tokens.length;
    const index = s.generated;
    const tokenId = sampleToken(
      logits,
      row * vocab,
      this.core.samplable,
      s.spec.temperature,
      s.spec.routingSeed,
      index,
    );
    s.tokens.push(tokenId);
    s.generated++;
    const finishReason = tokenId === eos ? "STOP" : s.generated >= s.spec.maxTokens ? "LENGTH" : undefined;
    s.finished = finishReason !== undefined;
    if (s.finished) this.releaseKv(s);
    // Listed and sorted when first read: only `npm run generate` and tests read them, and
    // this runs for every token (the sets are this pass's own: nothing adds to them later).
    const used = pass.experts;
    let experts: string[][] | undefined;
    return {
      id: s.spec.id,
      index,
      tokenId,
      text: this.core.tokenizer.tokenText(tokenId),
      finished: s.finished,
      ...(finishReason ? { finishReason } : {}),
      expertCalls: this.newCalls(s, pass.expertCalls),
      get experts() {
        return (experts ??= used.map((set) => [...set].sort()));
      },
    };
  }

  /**
   * This step's expert calls to report (and bill): after a pause, less the calls of the rows
   * its prefill recomputed, so a paused sequence reports what an unpaused one would.
   */
  private newCalls(s: SequenceState, calls: ReadonlyMap<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [tier, n] of calls) {
      const fresh = n - (s.callsRecomputed?.get(tier) ?? 0);
      if (fresh > 0) out[tier] = fresh;
      s.callsReported.set(tier, (s.callsReported.get(tier) ?? 0) + Math.max(0, fresh));
    }
    s.callsRecomputed = undefined;
    return out;
  }

  /** The sequence sits out until its loads settle; a failed one fails it. */
  private park(s: SequenceState, parked: Promise<void>): void {
    s.parked = parked;
    const settle = (failure?: string) => {
      if (s.parked !== parked) return;
      s.parked = undefined;
      if (failure !== undefined) s.failure = failure;
      this.wakeWaiters();
    };
    parked.then(
      () => settle(),
      (e: unknown) => settle(e instanceof Error ? e.message : String(e)),
    );
  }

  /** Holds a computed token back until `untilMs` (the timing defence's pad). */
  private hold(s: SequenceState, output: StepOutput, untilMs: number): void {
    const delayMs = Math.max(0, untilMs - this.core.defence.clock.nowMs());
    const timer = setTimeout(() => this.wakeWaiters(), delayMs);
    timer.unref();
    s.held = { output, untilMs, timer };
  }

  private releaseHeld(s: SequenceState): StepOutput {
    const { output, timer } = s.held!;
    clearTimeout(timer);
    s.held = undefined;
    return output;
  }

  /** The sequence's end after a failed load: no token, finishReason ERROR, reported once. */
  private failedOutput(s: SequenceState): StepOutput {
    const error = s.failure!;
    s.failure = undefined;
    s.finished = true;
    this.releaseKv(s);
    return {
      id: s.spec.id,
      index: s.generated,
      tokenId: -1,
      text: "",
      finished: true,
      finishReason: "ERROR",
      error,
      expertCalls: {},
      experts: [],
    };
  }

  /**
   * The sequence alone cannot fit its next step in its tenant's kvCacheBytes: it ends here.
   * With tokens produced, LENGTH and no token (its quota is its context); with none (its
   * prompt never fits: admission refuses that, so its quota was lowered since), ERROR.
   */
  private outgrownOutput(s: SequenceState): StepOutput {
    const needed = s.kv.bytesFor(s.tokens.length);
    const quota = this.core.kv.quotaOf(s.spec.tenantId);
    s.finished = true;
    this.releaseKv(s);
    const base = {
      id: s.spec.id,
      index: s.generated,
      tokenId: -1,
      text: "",
      finished: true,
      expertCalls: {},
      experts: [],
    };
    if (s.generated > 0) return { ...base, finishReason: "LENGTH" };
    return {
      ...base,
      finishReason: "ERROR",
      error: `its prompt needs ${needed} bytes of KV cache, over its tenant's kvCacheBytes (${quota})`,
    };
  }

  /** A finished sequence needs no KV: zeroed and dropped now (others of its tenant may fit). */
  private releaseKv(s: SequenceState): void {
    s.kv.release();
    this.core.kv.changed();
  }
}
