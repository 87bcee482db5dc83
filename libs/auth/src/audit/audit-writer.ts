import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { isTransientInfraError, sleep, systemClock, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { duplicateRedis, type Redis, type RedisKeys } from "@lite/redis";
import { AuditEvent } from "./audit-event";
import { appendAuditEvents } from "./audit-append";
import { auditDeadLetterKey, auditStreamKey } from "./audit-queue";
import { sanitiseAuditEvent } from "./audit-sanitise";
import { fieldOf, quarantineAuditEntry, type QuarantineReason } from "./audit-dead-letter";
import { createAuditMetrics, type AuditMetrics, type AuditQueueStats } from "./audit-metrics";

/**
 * Appends queued audit events to PostgreSQL, in queue order, hash-chained.
 * Any number of processes may run a writer at once:
 *   1. read the oldest entries of the stream (XRANGE from the start: entries leave the
 *      stream only after they are committed or quarantined, so every read is the oldest
 *      contiguous run);
 *   2. make each storable (audit-sanitise.ts: NUL and lone surrogates escaped, over-long
 *      fields truncated); an entry that does not parse is quarantined (audit-dead-letter.ts);
 *   3. in one transaction holding a PostgreSQL advisory lock (one appender at a time per
 *      database; audit-append.ts): skip events whose eventId is already in the log
 *      (another writer, this one before a crash, or an AuditQueue that wrote them directly
 *      while Redis refused them), read the last row, append the rest with consecutive seq
 *      and chained hashes;
 *   4. after commit, delete the entries from the stream (XDEL). A crash between 3 and 4
 *      only makes the next pass skip them as duplicates. Then wait for new entries, and let
 *      more join them for `lingerMs` before the next pass (one transaction per batch, not
 *      per event);
 *   5. when the batch fails and PostgreSQL or Redis is unreachable, retry the pass later
 *      (nothing moves). Any other failure: append the batch one event at a time, in order;
 *      an event PostgreSQL refuses on its own twice, while it answers `SELECT 1`, is
 *      quarantined and the writer goes on. So one bad event never blocks the log, and no
 *      event leaves the queue without being stored or quarantined.
 */
export interface AuditWriterOptions {
  db: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  log?: Logger;
  /** the registry served at /metrics; without one no series are kept */
  registry?: Registry;
  /** time of quarantines and of the queue-lag gauge (default: system clock) */
  clock?: Clock;
  /** entries per transaction (default 200) */
  batchSize?: number;
  /** how long one blocking wait for new entries lasts, ms (default 1000) */
  blockMs?: number;
  /**
   * once new entries arrive, how long to let more join them before one transaction takes them
   * all, ms (default 200; the events are durable in the queue meanwhile). Without it a steady
   * trickle cost a transaction per event: under the isolation bench's flood (~34 requests/s,
   * each audited) the API ran ~34 appends a second, six round trips and four Prisma query
   * compilations each, beside the requests.
   */
  lingerMs?: number;
  /** pause after a failed pass, ms (default 500); doubles per failure up to maxRetryDelayMs */
  retryDelayMs?: number;
  /** longest pause between failed passes, ms (default 10000) */
  maxRetryDelayMs?: number;
}

interface Pending {
  id: string;
  fields: string[];
  event: AuditEvent;
}

export class AuditWriter {
  private readonly streamKey: string;
  private readonly clock: Clock;
  private readonly metrics: AuditMetrics | null;
  private blocking: Redis | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private lastSeenId = "0-0";
  /** aborted by stop(): ends a linger at once */
  private stopping = new AbortController();

  constructor(private readonly opts: AuditWriterOptions) {
    this.streamKey = auditStreamKey(opts.keys);
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.registry
      ? createAuditMetrics(
          opts.registry,
          () => this.queueStats(),
          (e) => opts.log?.warn({ err: e }, "audit: could not read the queue for /metrics"),
        )
      : null;
  }

  /** Append (or quarantine) what is queued now, one batch; returns how many entries left the queue. */
  async drainOnce(): Promise<number> {
    const { redis } = this.opts;
    const entries = await redis.xrange(this.streamKey, "-", "+", "COUNT", this.opts.batchSize ?? 200);
    if (entries.length === 0) return 0;
    const pending: Pending[] = [];
    for (const [id, fields] of entries) {
      this.lastSeenId = id;
      const parsed = AuditEvent.safeParse(safeJson(fieldOf(fields, "e")));
      if (!parsed.success) {
        await this.quarantine({ id, fields }, "malformed", `not an AuditEvent: ${parsed.error.message}`);
        continue;
      }
      const { event, changed } = sanitiseAuditEvent(parsed.data);
      for (const field of changed) this.metrics?.sanitised.inc({ field });
      if (changed.length > 0) this.opts.log?.warn({ entryId: id, fields: changed }, "audit: stored a sanitised event");
      pending.push({ id, fields, event });
    }
    if (pending.length === 0) return entries.length;
    try {
      await this.append(pending.map((p) => p.event));
    } catch (e) {
      if (isTransientInfraError(e)) throw e;
      await this.appendOneByOne(pending, e);
      return entries.length;
    }
    this.metrics?.batches.inc();
    await redis.xdel(this.streamKey, ...pending.map((p) => p.id));
    return entries.length;
  }

  /** Drain until the stream is empty (shutdown, tests). */
  async flush(): Promise<void> {
    while ((await this.drainOnce()) > 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    // blockingTimeout: an XREAD queued while this connection reconnects resolves (null) instead
    // of waiting for good: ioredis never settles it once disconnect() (stop) lands between two
    // reconnect attempts, and stop() would wait on the loop forever.
    this.blocking = duplicateRedis(this.opts.redis, "audit-writer", {
      blockingTimeout: (this.opts.blockMs ?? 1000) + 1000,
    });
    this.blocking.on("error", (e: unknown) => this.opts.log?.warn({ err: e }, "audit writer: redis error"));
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const firstDelayMs = this.opts.retryDelayMs ?? 500;
    let delayMs = firstDelayMs;
    const batchSize = this.opts.batchSize ?? 200;
    while (this.running) {
      try {
        const n = await this.drainOnce();
        delayMs = firstDelayMs;
        // a full batch: a backlog, the next one at once
        if (n >= batchSize || !this.running) continue;
        const news = await this.blocking?.xread(
          "BLOCK",
          this.opts.blockMs ?? 1000,
          "STREAMS",
          this.streamKey,
          this.lastSeenId,
        );
        if (news && this.running) await sleep(this.opts.lingerMs ?? 200, { signal: this.stopping.signal });
      } catch (e) {
        if (!this.running) break;
        // Only an unreachable service gets here now; back off so an outage is not a log flood.
        this.opts.log?.error({ err: e, retryInMs: delayMs }, "audit writer pass failed; retrying");
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, this.opts.maxRetryDelayMs ?? 10000);
      }
    }
  }

  /** Stop the loop after a last flush (best effort). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopping.abort();
    this.blocking?.disconnect();
    await this.loop?.catch(() => undefined);
    await this.flush().catch((e) => this.opts.log?.warn({ err: e }, "audit: final flush failed; entries stay queued"));
    this.blocking = null;
  }

  /** Step 3: one transaction, chained after the last stored row (audit-append.ts). */
  private async append(events: AuditEvent[]): Promise<void> {
    await appendAuditEvents(this.opts.db, events);
  }

  /** Step 5: find the event the batch failed on; keep order; quarantine only the guilty. */
  private async appendOneByOne(pending: Pending[], batchError: unknown): Promise<void> {
    this.opts.log?.warn({ err: batchError, entries: pending.length }, "audit: batch refused; appending one by one");
    for (const p of pending) {
      let error: unknown = null;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await this.append([p.event]);
          error = null;
          break;
        } catch (e) {
          // An outage is nobody's fault: stop here, the next pass resumes with this event.
          if (isTransientInfraError(e) || !(await this.dbAnswers())) throw e;
          error = e;
        }
      }
      if (error === null) await this.opts.redis.xdel(this.streamKey, p.id);
      else await this.quarantine(p, "rejected", errorText(error));
    }
  }

  private async quarantine(entry: { id: string; fields: string[] }, reason: QuarantineReason, error: string) {
    const moved = await quarantineAuditEntry(
      this.opts.redis,
      this.opts.keys,
      entry,
      reason,
      error,
      new Date(this.clock.nowMs()),
    );
    if (!moved) return; // another writer moved it first and counted it
    this.metrics?.quarantined.inc({ reason });
    this.opts.log?.error(
      { entryId: entry.id, reason, error, deadLetterKey: auditDeadLetterKey(this.opts.keys) },
      "audit: event quarantined in the dead-letter stream",
    );
  }

  private async dbAnswers(): Promise<boolean> {
    try {
      await this.opts.db.$queryRaw`SELECT 1`;
      return true;
    } catch {
      return false;
    }
  }

  private async queueStats(): Promise<AuditQueueStats> {
    const r = await this.opts.redis
      .pipeline()
      .xlen(this.streamKey)
      .xrange(this.streamKey, "-", "+", "COUNT", 1)
      .xlen(auditDeadLetterKey(this.opts.keys))
      .exec();
    const failed = r?.find(([e]) => e);
    if (!r || failed) throw failed?.[0] ?? new Error("no reply");
    const oldest = (r[1][1] as Array<[string, string[]]>)[0]?.[0];
    const oldestMs = oldest ? Number(oldest.split("-")[0]) : null;
    return {
      length: r[0][1] as number,
      lagSeconds: oldestMs === null ? 0 : Math.max(0, (this.clock.nowMs() - oldestMs) / 1000),
      deadLetters: r[2][1] as number,
    };
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function safeJson(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
