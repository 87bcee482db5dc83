import { createHash } from "node:crypto";
import type { PrismaClient } from "@lite/db";

/**
 * The hash chain: row.hash = SHA-256(prevHash + canonicalJson(row)), where the row is
 * every stored column but prevHash and hash, keys sorted, seq as a decimal string and
 * `at` as ISO-8601 UTC. The first row's prevHash is GENESIS_HASH; seq starts at 1 and
 * has no gaps.
 */
export const GENESIS_HASH = "0".repeat(64);

export interface ChainRow {
  seq: bigint;
  at: Date;
  tenantId: string | null;
  actor: string;
  action: string;
  resource: string;
  decision: string;
  reason: string | null;
  eventId: string | null;
}

/** JSON with object keys sorted at every level; the one serialisation hashed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

export function rowHash(prevHash: string, row: ChainRow): string {
  const body = canonicalJson({
    seq: row.seq.toString(),
    at: row.at.toISOString(),
    tenantId: row.tenantId,
    actor: row.actor,
    action: row.action,
    resource: row.resource,
    decision: row.decision,
    reason: row.reason,
    eventId: row.eventId,
  });
  return createHash("sha256")
    .update(prevHash + body, "utf8")
    .digest("hex");
}

export type ChainVerdict =
  | { ok: true; rows: number; lastSeq: bigint; lastHash: string }
  | { ok: false; rows: number; badSeq: bigint; problem: string };

/** Walks the whole log in seq order, in pages, and reports the first broken link. */
export async function verifyAuditChain(db: PrismaClient, pageSize = 5000): Promise<ChainVerdict> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1n;
  let rows = 0;
  for (;;) {
    const batch = await db.auditLog.findMany({
      where: { seq: { gte: expectedSeq } },
      orderBy: { seq: "asc" },
      take: pageSize,
    });
    if (batch.length === 0) break;
    for (const row of batch) {
      if (row.seq !== expectedSeq)
        return { ok: false, rows, badSeq: expectedSeq, problem: `seq ${expectedSeq} is missing` };
      if (row.prevHash !== prevHash)
        return { ok: false, rows, badSeq: row.seq, problem: "prevHash does not match the previous row's hash" };
      const want = rowHash(prevHash, row);
      if (row.hash !== want)
        return { ok: false, rows, badSeq: row.seq, problem: "hash does not match the row's contents" };
      prevHash = row.hash;
      expectedSeq += 1n;
      rows += 1;
    }
  }
  return { ok: true, rows, lastSeq: expectedSeq - 1n, lastHash: prevHash };
}
