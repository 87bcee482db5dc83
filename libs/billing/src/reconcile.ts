import { isTerminalStatus, type CompletionStatus } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";
import { periodEnd, periodStart } from "./period";

/**
 * Reconciliation of one period's usage against what completions produced
 * (`npm run billing:reconcile`). Steps:
 *   1. duplicates: for every completion with usage in the period, no (meter, dimension)
 *      has more than one usage event (the idempotency key makes a second write of the same
 *      key impossible; this catches events written under another key);
 *   2. per completion that finished in the period or has usage in it, in pages of
 *      `pageSize` by id:
 *      - usage for a completion that does not exist, or under another tenant, is a mismatch;
 *      - one still running is counted as in flight and not checked;
 *      - its tokens are those its stream holds (while the stream is retained), else its
 *        row's outputTokens; a stream and a row that disagree are a mismatch;
 *      - OUTPUT_TOKENS billed must equal those tokens and INPUT_TOKENS the row's
 *        promptTokens; a completion without any usage event is fine only with 0 tokens
 *        (a job failed before it ran is not billed).
 * Every mismatch is reported, not only the first.
 */
export interface StreamTokenCounter {
  /** tokens (before the done event) the completion's stream holds; null when it has none (expired or never written) */
  streamedTokens(tenantId: string, completionId: string): Promise<number | null>;
}

export const MISMATCH_KINDS = [
  "DUPLICATE_EVENT",
  "ORPHAN_USAGE",
  "TENANT_MISMATCH",
  "STREAM_ROW_MISMATCH",
  "OUTPUT_TOKENS",
  "INPUT_TOKENS",
  "UNBILLED",
] as const;
export type MismatchKind = (typeof MISMATCH_KINDS)[number];

export interface Mismatch {
  kind: MismatchKind;
  completionId: string;
  tenantId: string | null;
  detail: string;
}

export interface ReconcileReport {
  period: string;
  completionsChecked: number;
  /** usage events that occurred in the period */
  usageEvents: number;
  /** completions still queued or running: not checked */
  inFlight: number;
  mismatches: Mismatch[];
}

export interface ReconcileOptions {
  /** completions per page (default 500) */
  pageSize?: number;
}

const utc = (d: Date) => Prisma.sql`(${d.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;

type Db = Pick<PrismaClient, "$queryRaw">;

async function duplicates(db: Db, from: Date, to: Date): Promise<Mismatch[]> {
  const rows = await db.$queryRaw<
    Array<{ completionId: string; tenantId: string; meter: string; dimension: string | null; n: number; keys: string }>
  >`
    WITH scope AS (
      SELECT DISTINCT "completionId" FROM "UsageEvent"
      WHERE "completionId" IS NOT NULL AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
    )
    SELECT e."completionId" AS "completionId", MIN(e."tenantId") AS "tenantId", e.meter::text AS meter,
           e.dimension AS dimension, COUNT(*)::int AS n,
           string_agg(e."idempotencyKey", ' ' ORDER BY e."idempotencyKey") AS keys
    FROM "UsageEvent" e JOIN scope s ON s."completionId" = e."completionId"
    GROUP BY e."completionId", e.meter, e.dimension
    HAVING COUNT(*) > 1
    ORDER BY 1, 3, 4`;
  return rows.map((r) => ({
    kind: "DUPLICATE_EVENT" as const,
    completionId: r.completionId,
    tenantId: r.tenantId,
    detail: `${r.meter}${r.dimension ? `/${r.dimension}` : ""} has ${r.n} usage events (keys: ${r.keys})`,
  }));
}

export interface CompletionRow {
  completionId: string;
  tenantId: string | null;
  status: CompletionStatus | null;
  outputTokens: number | null;
  promptTokens: number | null;
  events: number;
  outputBilled: string;
  inputBilled: string;
  eventTenants: string | null;
}

async function completionPage(db: Db, from: Date, to: Date, after: string, pageSize: number) {
  return db.$queryRaw<CompletionRow[]>`
    WITH scope AS (
      SELECT id FROM "Completion"
      WHERE "finishedAt" >= ${utc(from)} AND "finishedAt" < ${utc(to)} AND id > ${after}
      UNION
      SELECT "completionId" FROM "UsageEvent"
      WHERE "completionId" IS NOT NULL AND "completionId" > ${after}
        AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}
      ORDER BY 1 LIMIT ${pageSize}
    )
    SELECT s.id AS "completionId", c."tenantId" AS "tenantId", c.status::text AS status,
           c."outputTokens" AS "outputTokens", c."promptTokens" AS "promptTokens",
           COUNT(e.id)::int AS events,
           COALESCE(SUM(e.quantity) FILTER (WHERE e.meter = 'OUTPUT_TOKENS'), 0)::text AS "outputBilled",
           COALESCE(SUM(e.quantity) FILTER (WHERE e.meter = 'INPUT_TOKENS'), 0)::text AS "inputBilled",
           string_agg(DISTINCT e."tenantId", ',') AS "eventTenants"
    FROM scope s
    LEFT JOIN "Completion" c ON c.id = s.id
    LEFT JOIN "UsageEvent" e ON e."completionId" = s.id
    GROUP BY s.id, c."tenantId", c.status, c."outputTokens", c."promptTokens"
    ORDER BY s.id`;
}

/** The mismatches of one finished completion; `streamed` is what its stream holds (null: gone). */
export function checkCompletion(row: CompletionRow, streamed: number | null): Mismatch[] {
  const out: Mismatch[] = [];
  const m = (kind: MismatchKind, detail: string) =>
    out.push({ kind, completionId: row.completionId, tenantId: row.tenantId, detail });
  if (row.eventTenants !== null && row.eventTenants !== row.tenantId)
    m("TENANT_MISMATCH", `usage under tenant(s) ${row.eventTenants}, completion of ${row.tenantId}`);
  const rowTokens = row.outputTokens ?? 0;
  if (streamed !== null && streamed !== rowTokens)
    m("STREAM_ROW_MISMATCH", `row has ${rowTokens} output tokens, stream holds ${streamed}`);
  const tokens = streamed ?? rowTokens;
  const source = streamed !== null ? "stream holds" : "row has";
  if (row.events === 0) {
    if (tokens > 0) m("UNBILLED", `no usage events, ${source} ${tokens} output tokens`);
    return out;
  }
  if (BigInt(row.outputBilled) !== BigInt(tokens))
    m("OUTPUT_TOKENS", `OUTPUT_TOKENS billed ${row.outputBilled}, ${source} ${tokens}`);
  if (BigInt(row.inputBilled) !== BigInt(row.promptTokens ?? 0))
    m("INPUT_TOKENS", `INPUT_TOKENS billed ${row.inputBilled}, row has ${row.promptTokens} prompt tokens`);
  return out;
}

async function checkPage(rows: CompletionRow[], streams: StreamTokenCounter, report: ReconcileReport) {
  const finished = rows.filter((r) => r.status !== null && isTerminalStatus(r.status));
  const streamed = await Promise.all(finished.map((r) => streams.streamedTokens(r.tenantId!, r.completionId)));
  for (const r of rows) {
    if (r.status === null)
      report.mismatches.push({
        kind: "ORPHAN_USAGE",
        completionId: r.completionId,
        tenantId: r.eventTenants,
        detail: `${r.events} usage event(s) for a completion that does not exist`,
      });
    else if (!isTerminalStatus(r.status)) report.inFlight++;
  }
  finished.forEach((r, i) => report.mismatches.push(...checkCompletion(r, streamed[i])));
  report.completionsChecked += finished.length;
}

export async function reconcilePeriod(
  db: Db,
  streams: StreamTokenCounter,
  period: string,
  opts: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const from = periodStart(period);
  const to = periodEnd(period);
  const pageSize = opts.pageSize ?? 500;
  const [{ n }] = await db.$queryRaw<Array<{ n: number }>>`
    SELECT COUNT(*)::int AS n FROM "UsageEvent" WHERE "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}`;
  const report: ReconcileReport = {
    period,
    completionsChecked: 0,
    usageEvents: n,
    inFlight: 0,
    mismatches: await duplicates(db, from, to),
  };
  for (let after = ""; ;) {
    const rows = await completionPage(db, from, to, after, pageSize);
    if (rows.length === 0) break;
    await checkPage(rows, streams, report);
    after = rows[rows.length - 1].completionId;
  }
  return report;
}

/** The report as the command prints it: one line per mismatch, then the verdict. */
export function formatReconcileReport(r: ReconcileReport): string {
  const lines = [
    `reconcile ${r.period}: ${r.completionsChecked} completions and ${r.usageEvents} usage events checked` +
      (r.inFlight > 0 ? `, ${r.inFlight} still running (not checked)` : ""),
    ...r.mismatches.map(
      (m) =>
        `MISMATCH ${m.kind} completion ${m.completionId}${m.tenantId ? ` (tenant ${m.tenantId})` : ""}: ${m.detail}`,
    ),
    r.mismatches.length === 0
      ? `reconcile ${r.period}: OK`
      : `reconcile ${r.period}: FAILED, ${r.mismatches.length} mismatch(es)`,
  ];
  return lines.join("\n") + "\n";
}
