/**
 * Stop sequences over a stream of text pieces. The output so far is scanned after each
 * piece: once it contains a stop sequence, the text up to (not including) its first
 * occurrence is final and the completion is to end. While no sequence is found, the tail
 * that could still become the start of one is held back, so a client never receives text
 * that a later token turns into a stop sequence.
 */
export class StopScanner {
  private text = "";
  private sentChars = 0;
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds a piece: what may be sent now, and whether a stop sequence ended the output. */
  push(piece: string): { send: string; stopped: boolean } {
    if (this.stopped) return { send: "", stopped: true };
    this.text += piece;
    const at = this.firstStopAt();
    if (at !== -1) {
      this.stopped = true;
      return { send: this.take(at), stopped: true };
    }
    return { send: this.take(this.text.length - this.heldBackChars()), stopped: false };
  }

  /** At the end of the output: what was held back (nothing after a stop). */
  flush(): string {
    return this.stopped ? "" : this.take(this.text.length);
  }

  /** The output as the client sees it: trimmed at the first stop sequence. */
  get output(): string {
    const at = this.firstStopAt();
    return at === -1 ? this.text : this.text.slice(0, at);
  }

  private take(upTo: number): string {
    if (upTo <= this.sentChars) return "";
    const piece = this.text.slice(this.sentChars, upTo);
    this.sentChars = upTo;
    return piece;
  }

  private firstStopAt(): number {
    let first = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s);
      if (i !== -1 && (first === -1 || i < first)) first = i;
    }
    return first;
  }

  /** The longest suffix of the text that is a proper prefix of some stop sequence. */
  private heldBackChars(): number {
    let held = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > held; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
