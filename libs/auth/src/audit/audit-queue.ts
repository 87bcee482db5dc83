import { newId, type Clock, systemClock } from "@lite/core";
import type { Redis, RedisKeys } from "@lite/redis";
import { AuditEvent, type AuditInput } from "./audit-event";
import { sanitiseAuditEvent } from "./audit-sanitise";

/** Where every process records audit events; see AuditWriter for the other end. */
export interface AuditSink {
  /** Enqueue events durably (one Redis round trip); never waits on the hash chain. */
  record(...inputs: AuditInput[]): Promise<void>;
}

export function auditStreamKey(keys: RedisKeys): string {
  return `${keys.global("audit")}:events`;
}

/**
 * Where the writer quarantines an entry it cannot store even after sanitising: same
 * `{audit}` tag as the queue, so one script moves an entry between them atomically.
 */
export function auditDeadLetterKey(keys: RedisKeys): string {
  return `${keys.global("audit")}:dead`;
}

export interface AuditQueueOptions {
  redis: Redis;
  keys: RedisKeys;
  clock?: Clock;
  /** called when Redis refuses an event; the caller's work is already done and is not failed */
  onError?: (error: unknown) => void;
}

/**
 * The durable audit queue: a Redis Stream under the global `{audit}` tag. Entries are
 * removed only after the writer has committed them to PostgreSQL.
 */
export class AuditQueue implements AuditSink {
  private readonly streamKey: string;
  private readonly clock: Clock;

  constructor(private readonly opts: AuditQueueOptions) {
    this.streamKey = auditStreamKey(opts.keys);
    this.clock = opts.clock ?? systemClock;
  }

  async record(...inputs: AuditInput[]): Promise<void> {
    if (inputs.length === 0) return;
    const pipeline = this.opts.redis.pipeline();
    for (const input of inputs) {
      const at = input.at ?? new Date(this.clock.nowMs());
      // Sanitised here too, so Redis never holds what a request made huge or unstorable.
      const { event } = sanitiseAuditEvent(
        AuditEvent.parse({
          version: 1,
          eventId: newId("audit", at.getTime()),
          at: at.toISOString(),
          tenantId: input.tenantId ?? null,
          actor: input.actor,
          action: input.action,
          resource: input.resource,
          decision: input.decision,
          reason: input.reason ?? null,
        }),
      );
      pipeline.xadd(this.streamKey, "*", "e", JSON.stringify(event));
    }
    try {
      const results = await pipeline.exec();
      const failed = results?.find(([e]) => e);
      if (failed) throw failed[0];
    } catch (e) {
      this.opts.onError?.(e);
    }
  }
}
