import { DomainError, badInput, err, ok } from "@lite/core";
import { checkFirst, decodeCursor, encodeCursor, type PrismaClient } from "@lite/db";

/** One page of the audit log, newest first; cursors carry the chain's sequence number. */
export interface AuditLogQuery {
  /** one tenant's entries; null/undefined: every entry */
  tenantId?: string | null;
  /** page size, 1..MAX_PAGE_SIZE */
  first: number;
  /** endCursor of the previous page */
  after?: string | null;
}

export async function listAuditLog(db: Pick<PrismaClient, "auditLog">, query: AuditLogQuery) {
  let take: number;
  let before: bigint | undefined;
  try {
    take = checkFirst(query.first);
    if (query.after) {
      const raw = decodeCursor(query.after);
      if (!/^\d+$/.test(raw)) return err(badInput("after", "malformed cursor"));
      before = BigInt(raw);
    }
  } catch (e) {
    if (e instanceof DomainError) return err(e);
    throw e;
  }
  const rows = await db.auditLog.findMany({
    where: {
      ...(query.tenantId ? { tenantId: query.tenantId } : {}),
      ...(before !== undefined ? { seq: { lt: before } } : {}),
    },
    orderBy: { seq: "desc" },
    take: take + 1,
  });
  const nodes = rows.slice(0, take);
  const last = nodes[nodes.length - 1];
  return ok({
    nodes,
    pageInfo: { hasNextPage: rows.length > take, endCursor: last ? encodeCursor(last.seq.toString()) : null },
  });
}
