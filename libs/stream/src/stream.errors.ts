import { DomainError } from "@lite/core";

/** The stream is gone: its retention ended (the API answers STREAM_EXPIRED, HTTP 410). */
export class StreamExpiredError extends DomainError {
  constructor(completionId: string) {
    super("STREAM_EXPIRED", `token stream of ${completionId} has expired`, { context: { completionId } });
    this.name = "StreamExpiredError";
  }
}
