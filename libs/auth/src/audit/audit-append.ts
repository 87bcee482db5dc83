import type { PrismaClient } from "@lite/db";
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
  return db.$transaction(
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
        const row = chainRow(seq, e);
        const hash = rowHash(prevHash, row);
        rows.push({ ...row, prevHash, hash });
        prevHash = hash;
      }
      if (rows.length > 0) await tx.auditLog.createMany({ data: rows });
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
