import { DomainError } from "@lite/core";
import * as completions from "@lite/completions";
import type { CompletionTokenEvent } from "@lite/completions";
import type { FinishReason } from "@lite/core";
import { StopScanner } from "./stop-sequences";

/** How a relayed completion ended, as the client saw it. */
export interface RelayEnd {
  /** the completion's own reason; null when the client left first */
  finishReason: FinishReason | null;
  stoppedBySequence: boolean;
  /** tokens received from the stream (generated), including any past a stop sequence */
  completionTokens: number;
  /** the output as the client got it: trimmed at the first stop sequence */
  text: string;
}

/**
 * Relays a completion's tokens (libs/completions tokenEvents: replay from 0, then live)
 * through the stop scanner to `send`, until the done event, a stop sequence, or `abort()`
 * (the client left). The caller cancels the completion on a stop sequence or an abort; a
 * finished completion whose stream expired is relayed from its row's text.
 */
export class TokenRelay {
  private iterator: AsyncIterator<CompletionTokenEvent> | undefined;
  private aborted = false;

  constructor(
    private readonly streams: Parameters<typeof completions.tokenEvents>[0],
    private readonly row: completions.CompletionRow,
    private readonly stops: readonly string[],
  ) {}

  /** Stops the read (the client disconnected); run() then returns what it had. */
  abort(): void {
    this.aborted = true;
    void this.iterator?.return?.().catch(() => undefined);
  }

  async run(send: (text: string) => void): Promise<RelayEnd> {
    const scanner = new StopScanner(this.stops);
    const events = await completions.tokenEvents(this.streams, this.row, 0);
    if (!events.ok) {
      if (events.error.code !== "STREAM_EXPIRED") throw events.error;
      return this.fromRow(scanner, send);
    }
    const end: RelayEnd = { finishReason: null, stoppedBySequence: false, completionTokens: 0, text: "" };
    this.iterator = events.value[Symbol.asyncIterator]();
    try {
      while (!this.aborted) {
        const r = await this.iterator.next();
        if (r.done) break;
        if (r.value.done) {
          end.finishReason = r.value.finishReason;
          break;
        }
        end.completionTokens += 1;
        const step = scanner.push(r.value.text);
        if (step.send) send(step.send);
        if (step.stopped) {
          end.stoppedBySequence = true;
          break;
        }
      }
    } catch (e) {
      if (!this.aborted) throw e;
    } finally {
      await this.iterator.return?.().catch(() => undefined);
    }
    if (this.aborted) return { ...end, finishReason: null, text: scanner.output };
    const rest = scanner.flush();
    if (rest) send(rest);
    return { ...end, text: scanner.output };
  }

  /** A finished completion whose stream is gone: its row holds the text and count. */
  private fromRow(scanner: StopScanner, send: (text: string) => void): RelayEnd {
    const step = scanner.push(this.row.text);
    const text = step.send + scanner.flush();
    if (text) send(text);
    return {
      finishReason: this.row.finishReason,
      stoppedBySequence: step.stopped,
      completionTokens: this.row.outputTokens,
      text: scanner.output,
    };
  }
}

/** A completion that failed while generating: the client may retry (a new completion). */
export function failedWhileGenerating(id: string): DomainError {
  return new DomainError("UNAVAILABLE", `completion ${id} failed while generating; retry`, { retryAfterMs: 1000 });
}
