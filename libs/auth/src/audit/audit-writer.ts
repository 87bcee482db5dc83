import type { Logger } from "pino";
import type { PrismaClient } from "@lite/db";
import type { Redis, RedisKeys } from "@lite/redis";
import { AuditEvent } from "./audit-event";
import { GENESIS_HASH, rowHash, type ChainRow } from "./audit-chain";
import { auditStreamKey } from "./audit-queue";

/**
 * Appends queued audit events to PostgreSQL, in queue order, hash-chained.
 * Any number of processes may run a writer at once:
 *   1. read the oldest entries of the stream (XRANGE from the start: entries leave the
 *      stream only after they are committed, so every read is the oldest contiguous run);
 *   2. in one transaction holding a PostgreSQL advisory lock (one appender at a time per
 *      database): skip events whose eventId is already in the log (another writer, or
 *      this one before a crash, appended them), read the last row, append the rest with
 *      consecutive seq and chained hashes;
 *   3. after commit, delete the entries from the stream (XDEL). A crash between 2 and 3
 *      only makes the next pass skip them as duplicates.
 */
const ADVISORY_LOCK_KEY = 0x6c69746561756474n; // "liteaudt"

export interface AuditWriterOptions {
  db: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  log?: Logger;
  /** entries per transaction (default 200) */
  batchSize?: number;
  /** how long one blocking wait for new entries lasts, ms (default 1000) */
  blockMs?: number;
}

export class AuditWriter {
  private readonly streamKey: string;
  private blocking: Redis | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private lastSeenId = "0-0";

  constructor(private readonly opts: AuditWriterOptions) {
    this.streamKey = auditStreamKey(opts.keys);
  }

  /** Append what is queued now, one batch; returns how many entries were consumed. */
  async drainOnce(): Promise<number> {
    const { db, redis } = this.opts;
    const entries = await redis.xrange(this.streamKey, "-", "+", "COUNT", this.opts.batchSize ?? 200);
    if (entries.length === 0) return 0;
    const events: AuditEvent[] = [];
    for (const [id, fields] of entries) {
      this.lastSeenId = id;
      const raw = fields[fields.indexOf("e") + 1];
      const parsed = AuditEvent.safeParse(safeJson(raw));
      if (parsed.success) events.push(parsed.data);
      else this.opts.log?.error({ entryId: id }, "audit: dropping a malformed queue entry");
    }
    if (events.length > 0) {
      await db.$transaction(
        async (tx) => {
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEY})`;
          const done = await tx.auditLog.findMany({
            where: { eventId: { in: events.map((e) => e.eventId) } },
            select: { eventId: true },
          });
          const skip = new Set(done.map((d) => d.eventId));
          const last = await tx.auditLog.findFirst({ orderBy: { seq: "desc" }, select: { seq: true, hash: true } });
          let seq = last?.seq ?? 0n;
          let prevHash = last?.hash ?? GENESIS_HASH;
          const rows = [];
          for (const e of events) {
            if (skip.has(e.eventId)) continue;
            skip.add(e.eventId);
            seq += 1n;
            const row: ChainRow = {
              seq,
              at: new Date(e.at),
              tenantId: e.tenantId,
              actor: e.actor,
              action: e.action,
              resource: e.resource,
              decision: e.decision,
              reason: e.reason,
              eventId: e.eventId,
            };
            const hash = rowHash(prevHash, row);
            rows.push({ ...row, prevHash, hash });
            prevHash = hash;
          }
          if (rows.length > 0) await tx.auditLog.createMany({ data: rows });
        },
        { timeout: 30000, maxWait: 30000 },
      );
    }
    await redis.xdel(this.streamKey, ...entries.map(([id]) => id));
    return entries.length;
  }

  /** Drain until the stream is empty (shutdown, tests). */
  async flush(): Promise<void> {
    while ((await this.drainOnce()) > 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.blocking = this.opts.redis.duplicate({ connectionName: "audit-writer" });
    this.blocking.on("error", (e: unknown) => this.opts.log?.warn({ err: e }, "audit writer: redis error"));
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const n = await this.drainOnce();
        if (n > 0 || !this.running) continue;
        await this.blocking?.xread("BLOCK", this.opts.blockMs ?? 1000, "STREAMS", this.streamKey, this.lastSeenId);
      } catch (e) {
        if (!this.running) break;
        this.opts.log?.error({ err: e }, "audit writer pass failed; retrying");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Stop the loop after a last flush (best effort). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.blocking?.disconnect();
    await this.loop?.catch(() => undefined);
    await this.flush().catch((e) => this.opts.log?.warn({ err: e }, "audit: final flush failed; entries stay queued"));
    this.blocking = null;
  }
}

function safeJson(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
