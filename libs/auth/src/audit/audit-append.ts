import { Prisma, type PrismaClient } from "@lite/db";
import type { AuditEvent } from "./audit-event";
import { GENESIS_HASH, rowHash, type ChainRow } from "./audit-chain";

/** The PostgreSQL advisory lock every appender holds: one appender at a time per database. */
const ADVISORY_LOCK_KEY = 0x6c69746561756474n; // "liteaudt"

/**
 * Appends events to the hash-chained log, in the order given, in one transaction holding
 * the advisory lock: events whose eventId is already in the log are skipped (appended by
 * another path or before a crash), the rest get consecutive seq after the last row and
 * chained hashes. The one way rows enter the log, whoever appends: the AuditWriter draining
 * the queue, or AuditQueue writing directly while Redis refuses events. So two paths never
 * fork the chain, and an event both queued and written directly is stored once. Events must
 * already be sanitised (sanitiseAuditEvent): the row hashed is the row stored. Returns how
 * many rows were appended.
 */
export async function appendAuditEvents(db: PrismaClient, events: AuditEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  // Raw SQL: the writer runs this for every batch, and Prisma's query compiler (no plan cache
  // in Prisma 6) cost more than the queries themselves (docs/PERFORMANCE.md).
  return db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEY})`;
      const done = await tx.$queryRaw<Array<{ eventId: string }>>`
        SELECT "eventId" FROM "AuditLog" WHERE "eventId" = ANY(${events.map((e) => e.eventId)}::text[])`;
      const skip = new Set(done.map((d) => d.eventId));
      const [last] = await tx.$queryRaw<Array<{ seq: bigint; hash: string }>>`
        SELECT seq, hash FROM "AuditLog" ORDER BY seq DESC LIMIT 1`;
      let seq = last ? BigInt(last.seq) : 0n;
      let prevHash = last?.hash ?? GENESIS_HASH;
      const rows: Prisma.Sql[] = [];
      for (const e of events) {
        if (skip.has(e.eventId)) continue;
        skip.add(e.eventId);
        seq += 1n;
        const row = chainRow(seq, e);
        const hash = rowHash(prevHash, row);
        rows.push(Prisma.sql`(${row.seq}, ${row.at.toISOString()}::timestamptz AT TIME ZONE 'UTC', ${row.tenantId},
          ${row.actor}, ${row.action}, ${row.resource}, ${row.decision}, ${row.reason}, ${row.eventId}, ${prevHash}, ${hash})`);
        prevHash = hash;
      }
      if (rows.length > 0)
        await tx.$executeRaw`
          INSERT INTO "AuditLog" (seq, at, "tenantId", actor, action, resource, decision, reason, "eventId", "prevHash", hash)
          VALUES ${Prisma.join(rows)}`;
      return rows.length;
    },
    { timeout: 30000, maxWait: 30000 },
  );
}

function chainRow(seq: bigint, e: AuditEvent): ChainRow {
  return {
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
}
