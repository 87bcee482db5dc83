import { badInput, DomainError, err, notFound, ok, type Result } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";
import { assembleInvoice, type InvoiceStatus, type InvoiceView } from "./invoice";
import { adjustmentRunStart, findIssuedPeriod, readIssuedInvoices, writeIssuedInvoices } from "./invoice-store";
import { checkPeriod, isClosed, periodEnd, periodStart } from "./period";
import { currentPriceBook, DEFAULT_PRICE_BOOK, ensureDefaultPriceBook } from "./price-book";
import { rateUsage } from "./rating";

/**
 * Invoices and their issuance.
 *
 * A period (a UTC month) is open until its last instant has passed, then closed. A closed
 * period is ISSUED by `issuePeriod` — which the first operator read of its invoices calls
 * (`invoice`/`invoices` as ADMIN or FINANCE, `npm run billing:export`: billing.service.ts);
 * before that, and for an open period, every read computes a DRAFT. Issuing, in one
 * transaction under an advisory lock (so two readers issue once):
 *   1. mark every unbilled usage event of the period, and of the unbroken run of issued
 *      months just before it, as billed in this period (`UsageEvent.invoicedPeriod`);
 *   2. rate exactly the marked events (rating.ts) and store one invoice per tenant with
 *      usage (invoice-store.ts), and the period as issued.
 * An issued invoice never changes. Usage of an issued month recorded later (a worker that
 * finalised after the issue, a replay) is not dropped: it is unbilled, so it appears on the
 * next month that is not issued yet, as an adjustment line naming the month it occurred in
 * (`adjustment: true`, `usagePeriod`), rated with the book in force when it occurred.
 * Events are marked, not compared by time, so an event committed while the period was
 * being issued is either on the issued invoice or on a later adjustment, never on neither.
 */
export interface InvoiceRequest {
  period: string;
  now: Date;
}

/** One appender of invoices at a time per database ("litebill"). */
const ISSUE_LOCK_KEY = 0x6c69746562696c6cn;
/** An issuance rates a whole month in one transaction: allow it time. */
const ISSUE_TIMEOUT_MS = 120_000;

const utc = (d: Date) => Prisma.sql`(${d.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;

type Db = PrismaClient;

/**
 * The invoice currency: that of the book in force at the period's last instant (or now, if
 * earlier); the default book's before any book is in force. (Callers create the default
 * book first, outside any transaction: a lost creation race would abort theirs.)
 */
async function invoiceCurrency(db: Pick<PrismaClient, "priceBook">, period: string, now: Date): Promise<string> {
  const at = new Date(Math.min(periodEnd(period).getTime() - 1, now.getTime()));
  return (await currentPriceBook(db, at))?.currency ?? DEFAULT_PRICE_BOOK.currency;
}

async function tenantNames(db: Pick<PrismaClient, "tenant">, ids: string[]): Promise<Map<string, string>> {
  const rows = await db.tenant.findMany({ where: { id: { in: ids } }, select: { id: true, name: true } });
  return new Map(rows.map((r) => [r.id, r.name]));
}

function collect<T>(results: Result<T, DomainError>[]): Result<T[], DomainError> {
  const values: T[] = [];
  for (const r of results) {
    if (!r.ok) return r;
    values.push(r.value);
  }
  return ok(values);
}

/** Drafts: the unbilled usage landing on `period`, per tenant (only `tenantId`'s when given, even if it has none). */
async function draftInvoices(
  db: Db,
  period: string,
  now: Date,
  tenantId?: string,
): Promise<Result<InvoiceView[], DomainError>> {
  const from = periodStart(await adjustmentRunStart(db, period));
  const rated = await rateUsage(db, period, from, periodEnd(period), { unbilled: true, tenantId });
  const currency = await invoiceCurrency(db, period, now);
  const ids = tenantId ? [tenantId] : [...rated.keys()].sort();
  const names = await tenantNames(db, ids);
  const head = (id: string) => ({
    tenantId: id,
    tenantName: names.get(id) ?? id,
    period,
    currency,
    status: "DRAFT" as InvoiceStatus,
    issuedAt: null,
  });
  return collect(ids.map((id) => assembleInvoice(head(id), rated.get(id) ?? [])));
}

/**
 * Issues a closed period (idempotent: an issued period answers its issue time). BAD_USER_INPUT
 * for a bad or open period; CONFLICT when its books disagree on the currency (nothing stored).
 */
export async function issuePeriod(
  db: Db,
  period: string,
  now: Date,
): Promise<Result<{ period: string; issuedAt: Date; issuedNow: boolean }, DomainError>> {
  const checked = checkPeriod(period, now);
  if (!checked.ok) return checked;
  if (!isClosed(period, now))
    return err(badInput("period", `${period} is still open: it can be issued from ${periodEnd(period).toISOString()}`));
  await ensureDefaultPriceBook(db);
  try {
    const issued = await db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ISSUE_LOCK_KEY})`;
        const done = await tx.invoicePeriod.findUnique({ where: { period } });
        if (done) return { period, issuedAt: done.issuedAt, issuedNow: false };
        const from = periodStart(await adjustmentRunStart(tx, period));
        const to = periodEnd(period);
        await tx.$executeRaw`
          UPDATE "UsageEvent" SET "invoicedPeriod" = ${period}
          WHERE "invoicedPeriod" IS NULL AND "occurredAt" >= ${utc(from)} AND "occurredAt" < ${utc(to)}`;
        const rated = await rateUsage(tx, period, from, to, { unbilled: false, billedIn: period });
        const currency = await invoiceCurrency(tx, period, now);
        const ids = [...rated.keys()].sort();
        const names = await tenantNames(tx, ids);
        const head = (id: string) => ({
          tenantId: id,
          tenantName: names.get(id) ?? id,
          period,
          currency,
          status: "ISSUED" as InvoiceStatus,
          issuedAt: now,
        });
        const invoices = collect(ids.map((id) => assembleInvoice(head(id), rated.get(id) ?? [])));
        if (!invoices.ok) throw invoices.error; // rolls the marks back: the period stays unissued
        await writeIssuedInvoices(tx, period, now, invoices.value);
        return { period, issuedAt: now, issuedNow: true };
      },
      { timeout: ISSUE_TIMEOUT_MS, maxWait: 10_000 },
    );
    return ok(issued);
  } catch (e) {
    if (e instanceof DomainError) return err(e);
    throw e;
  }
}

/**
 * One tenant's invoice for the period: the issued one, or a draft (reads never issue). A tenant without usage
 * gets an invoice without lines (total 0). NOT_FOUND for a tenant that does not exist.
 */
export async function tenantInvoice(
  db: Db,
  tenantId: string,
  req: InvoiceRequest,
): Promise<Result<InvoiceView, DomainError>> {
  const checked = checkPeriod(req.period, req.now);
  if (!checked.ok) return checked;
  await ensureDefaultPriceBook(db);
  const tenant = await db.tenant.findUnique({ where: { id: tenantId }, select: { name: true } });
  if (!tenant) return err(notFound("tenant", tenantId));
  const issued = await findIssuedPeriod(db, req.period);
  if (!issued) {
    const drafts = await draftInvoices(db, req.period, req.now, tenantId);
    return drafts.ok ? ok(drafts.value[0]) : drafts;
  }
  const [stored] = await readIssuedInvoices(db, req.period, tenantId);
  if (stored) return ok(stored);
  const head = {
    tenantId,
    tenantName: tenant.name,
    period: req.period,
    currency: await invoiceCurrency(db, req.period, issued.issuedAt),
    status: "ISSUED" as InvoiceStatus,
    issuedAt: issued.issuedAt,
  };
  return assembleInvoice(head, []);
}

/** Every tenant's invoice for the period that has any line (usage or adjustment), by tenant id. */
export async function periodInvoices(db: Db, req: InvoiceRequest): Promise<Result<InvoiceView[], DomainError>> {
  const checked = checkPeriod(req.period, req.now);
  if (!checked.ok) return checked;
  await ensureDefaultPriceBook(db);
  if (!(await findIssuedPeriod(db, req.period))) return draftInvoices(db, req.period, req.now);
  return ok(await readIssuedInvoices(db, req.period));
}
