import { DomainError, err, isTerminalStatus, notFound, ok, type CompletionStatus, type Result } from "@lite/core";
import { hiddenNotFound } from "@lite/tenancy";
import { checkFirst, decodeCursor, page, type PrismaClient } from "@lite/db";
import type { TokenStreams } from "@lite/stream";
import type { CompletionRow, CompletionView } from "./completion.types";

/** The row as callers see it; `live` overrides the text and count of a running completion. */
export function toCompletion(row: CompletionRow, live?: { text: string; outputTokens: number }): CompletionView {
  return {
    id: row.id,
    tenantId: row.tenantId,
    model: row.modelId,
    status: row.status,
    mode: row.mode,
    tierSet: row.tierSet,
    degraded: row.degraded,
    seed: row.seed,
    promptTokens: row.promptTokens,
    outputTokens: live?.outputTokens ?? row.outputTokens,
    text: live?.text ?? row.text,
    finishReason: row.finishReason,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

/** The row, with the text so far from the stream while it runs (the row gets it only at the end). */
export async function withLiveText(
  streams: Pick<TokenStreams, "readAll">,
  row: CompletionRow,
): Promise<CompletionView> {
  if (isTerminalStatus(row.status)) return toCompletion(row);
  const tokens = (await streams.readAll(row.tenantId, row.id)).filter((e) => !e.done);
  return toCompletion(row, { text: tokens.map((e) => e.text).join(""), outputTokens: tokens.length });
}

/**
 * A completion by id, within `scope` (a tenant id, or null for operators). Not visible:
 * NOT_FOUND, whether missing or another tenant's — the two read alike on purpose (one query
 * either way); for another tenant's, `context.hidden` (libs/tenancy hiddenNotFound) names the
 * owner so the caller can audit the denial.
 *
 * Raw SQL: every subscription to a completion's tokens starts here, on its time to first
 * token, and Prisma 6 compiles each ORM query anew on the API's thread (docs/PERFORMANCE.md:
 * under the isolation flood these reads were most of the API's ORM queries). Every column
 * of Completion is a plain scalar, which $queryRaw returns as the ORM does.
 */
export async function findCompletion(
  db: PrismaClient,
  id: string,
  scope: string | null,
): Promise<Result<CompletionRow>> {
  const [row] = await db.$queryRaw<CompletionRow[]>`SELECT * FROM "Completion" WHERE id = ${id}`;
  if (row && (scope === null || row.tenantId === scope)) return ok(row);
  return err(row ? hiddenNotFound("completion", id, row.tenantId) : notFound("completion", id));
}

export interface ListCompletionsQuery {
  /** page size, 1..MAX_PAGE_SIZE */
  first: number;
  /** cursor from a previous page's pageInfo.endCursor */
  after?: string | null;
  status?: CompletionStatus | null;
}

export interface CompletionPage {
  nodes: CompletionView[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Newest first, within `scope` (a tenant id, or null for every tenant). */
export async function listCompletions(
  db: PrismaClient,
  scope: string | null,
  q: ListCompletionsQuery,
): Promise<Result<CompletionPage>> {
  const where: { tenantId?: string; status?: CompletionStatus; id?: { lt: string } } = {};
  try {
    checkFirst(q.first);
    if (q.after) where.id = { lt: decodeCursor(q.after) };
  } catch (e) {
    if (e instanceof DomainError) return err(e);
    throw e;
  }
  if (scope !== null) where.tenantId = scope;
  if (q.status) where.status = q.status;
  const rows = await db.completion.findMany({ where, orderBy: { id: "desc" }, take: q.first + 1 });
  const p = page(rows, q.first);
  return ok({ nodes: p.nodes.map((r) => toCompletion(r)), pageInfo: p.pageInfo });
}
