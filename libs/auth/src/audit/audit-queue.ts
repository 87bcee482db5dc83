import { DomainError, newId, type Clock, systemClock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { Redis, RedisKeys } from "@lite/redis";
import { AuditEvent, type AuditInput } from "./audit-event";
import { sanitiseAuditEvent } from "./audit-sanitise";
import { appendAuditEvents } from "./audit-append";

/** Where every process records audit events; see AuditWriter for the other end. */
export interface AuditSink {
  /**
   * Stores events durably before resolving: queued in Redis (one round trip), or, when Redis
   * refuses them, appended to PostgreSQL directly. When neither takes them it throws
   * UNAVAILABLE (retryable): the caller's action must then be refused, not answered unaudited.
   */
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
  /** where events Redis refuses are appended directly; without it they are refused (UNAVAILABLE) */
  db?: PrismaClient;
  clock?: Clock;
  /** called when Redis refuses events (they are then written to `db`, or refused) */
  onError?: (error: unknown) => void;
}

/** Retry hint of the UNAVAILABLE thrown when neither Redis nor PostgreSQL takes an event. */
export const AUDIT_UNAVAILABLE_RETRY_AFTER_MS = 1000;

/**
 * The durable audit queue: a Redis Stream under the global `{audit}` tag. Entries are
 * removed only after the writer has committed them to PostgreSQL.
 *
 * Redis unreachable (its client not ready, or the XADDs refused or past their deadline): the
 * same events, eventIds included, are appended to the log directly (audit-append.ts, the
 * writer's own append: same advisory lock, same chain). Should an XADD have landed after
 * all (its answer lost), the writer later finds its eventId in the log and only deletes the
 * entry, so nothing is stored twice. If PostgreSQL refuses too, record throws UNAVAILABLE.
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
    const events = inputs.map((input) => this.event(input));
    // A client known to be reconnecting would only make the request wait for its deadline.
    if (this.opts.db && this.opts.redis.status !== "ready") return this.appendDirectly(events, null);
    const pipeline = this.opts.redis.pipeline();
    for (const event of events) pipeline.xadd(this.streamKey, "*", "e", JSON.stringify(event));
    try {
      const results = await pipeline.exec();
      const failed = results?.find(([e]) => e);
      if (failed) throw failed[0];
    } catch (e) {
      this.opts.onError?.(e);
      await this.appendDirectly(events, e);
    }
  }

  /** An event as queued: sanitised here too, so Redis never holds what a request made huge or unstorable. */
  private event(input: AuditInput): AuditEvent {
    const at = input.at ?? new Date(this.clock.nowMs());
    return sanitiseAuditEvent(
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
    ).event;
  }

  private async appendDirectly(events: AuditEvent[], redisError: unknown): Promise<void> {
    try {
      if (!this.opts.db) throw redisError;
      await appendAuditEvents(this.opts.db, events);
    } catch (e) {
      throw new DomainError("UNAVAILABLE", "the audit log is briefly unavailable; nothing was recorded, retry later", {
        retryAfterMs: AUDIT_UNAVAILABLE_RETRY_AFTER_MS,
        retryable: true,
        cause: e,
      });
    }
  }
}
