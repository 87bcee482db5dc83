import type { CompletionSpec } from "@lite/completions";
import type { FinishReason } from "@lite/core";
import {
  ATTR,
  contextOfTraceparent,
  SpanKind,
  SpanStatusCode,
  trace,
  tracer,
  type Context,
  type Span,
} from "@lite/tracing";
import type { WorkHandle } from "./ports";

/**
 * One completion's spans in this worker, joined to the API's trace through the job's W3C
 * `traceparent` (the API's `completion.enqueue` span):
 *
 *   completion.queue_wait  enqueue → this dispatch (first starts only; a sibling of …)
 *   completion.process     this dispatch → the job left its queue (CONSUMER), with children
 *     completion.dispatch    the job taken → its first decode step here (row/payload, start checks, a batch slot)
 *     completion.prefill     its first decode step → its first token here (prompt, or prompt + resumed tokens; parks included)
 *     completion.decode      its first token → its last
 *     completion.stream_end  finalisation: usage, row, the stream's done event, settle, job complete
 *
 * Span times are the engine's clock. Attributes are ids, names, counts and outcomes only
 * (libs/tracing ATTR): never prompt or output text. With tracing off (no provider) or the
 * trace not sampled, `dispatched` returns undefined and nothing more is done per token.
 */
export class CompletionTrace {
  private phase?: { name: string; span: Span };

  private constructor(
    private readonly process: Span,
    private readonly ctx: Context,
  ) {}

  /** The job was taken from the dispatcher at `nowMs`. */
  static dispatched(handle: WorkHandle, nowMs: number, workerId: string): CompletionTrace | undefined {
    const parent = contextOfTraceparent(handle.traceparent);
    const attributes = {
      [ATTR.tenantId]: handle.tenantId,
      [ATTR.completionId]: handle.completionId,
      [ATTR.workerId]: workerId,
    };
    const process = tracer().startSpan(
      "completion.process",
      { kind: SpanKind.CONSUMER, startTime: nowMs, attributes },
      parent,
    );
    if (!process.isRecording()) return undefined;
    if (handle.firstStart && handle.enqueuedAtMs !== undefined) {
      tracer()
        .startSpan("completion.queue_wait", { startTime: Math.min(handle.enqueuedAtMs, nowMs), attributes }, parent)
        .end(nowMs);
    }
    const t = new CompletionTrace(process, trace.setSpan(parent, process));
    t.enter("completion.dispatch", nowMs);
    return t;
  }

  /** The completion as this worker runs it. */
  describe(spec: CompletionSpec): void {
    this.process.setAttributes({
      [ATTR.model]: spec.modelName,
      [ATTR.mode]: spec.mode,
      [ATTR.tiers]: spec.tierSet.length,
      [ATTR.maxTokens]: spec.maxTokens,
      [ATTR.inputTokens]: spec.promptTokens,
    });
  }

  /** Its first decode step here begins (`resumedTokens`: what its stream already held). */
  stepping(nowMs: number, resumedTokens: number): void {
    if (this.phase?.name !== "completion.dispatch") return;
    this.enter("completion.prefill", nowMs);
    if (resumedTokens > 0) this.phase!.span.setAttribute(ATTR.resumedTokens, resumedTokens);
  }

  /** A token was produced here. */
  token(nowMs: number): void {
    if (this.phase?.name === "completion.prefill") this.enter("completion.decode", nowMs);
  }

  /** It left the batch (or was refused at start): finalisation begins. */
  ending(nowMs: number, reason: FinishReason): void {
    this.process.setAttribute(ATTR.finishReason, reason);
    this.enter("completion.stream_end", nowMs);
  }

  /** The job left its queue: the completion ended with `outputTokens`, its row `status`. */
  ended(nowMs: number, outputTokens: number, status: string): void {
    this.process.setAttributes({ [ATTR.outputTokens]: outputTokens, [ATTR.status]: status });
    if (status === "FAILED") this.process.setStatus({ code: SpanStatusCode.ERROR, message: "completion failed" });
    this.close(nowMs);
  }

  /** This worker let it go unfinished (its lock was lost, a re-dispatch superseded it, shutdown). */
  dropped(nowMs: number, why: string): void {
    this.process.setAttribute(ATTR.status, `dropped: ${why}`);
    this.close(nowMs);
  }

  /** Finalisation gave up (the job stays queued for another worker). */
  abandoned(nowMs: number): void {
    this.process.setStatus({ code: SpanStatusCode.ERROR, message: "finalisation gave up" });
    this.close(nowMs);
  }

  private enter(name: string, nowMs: number): void {
    this.phase?.span.end(nowMs);
    this.phase = { name, span: tracer().startSpan(name, { startTime: nowMs }, this.ctx) };
  }

  private close(nowMs: number): void {
    this.phase?.span.end(nowMs);
    this.phase = undefined;
    this.process.end(nowMs);
  }
}
