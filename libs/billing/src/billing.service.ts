import { DomainError, err, ok, type Result } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { actorOf, type AuditSink, type Principal } from "@lite/auth";
import type { InvoiceView } from "./invoice";
import { findIssuedPeriod } from "./invoice-store";
import { issuePeriod, periodInvoices, tenantInvoice } from "./invoice.service";
import { checkPeriod, isClosed } from "./period";
import { createPriceBook, type PriceBookSpec, type StoredPriceBook } from "./price-book";

/** What the billing services work with. */
export interface BillingResources {
  db: PrismaClient;
  audit: Pick<AuditSink, "record">;
}

/** Adds a price book (books are never edited in place); an invalid one is BAD_USER_INPUT naming the field. Audited. */
export async function setPriceBook(
  r: BillingResources,
  principal: Principal,
  spec: PriceBookSpec,
): Promise<Result<StoredPriceBook, DomainError>> {
  let book: StoredPriceBook;
  try {
    book = await createPriceBook(r.db, spec);
  } catch (e) {
    if (e instanceof DomainError) return err(e);
    throw e;
  }
  await r.audit.record({
    actor: actorOf(principal),
    action: "pricebook.set",
    resource: `pricebook:${book.id}`,
    decision: "OK",
    reason: `${book.currency} from ${book.effectiveFrom.toISOString()}`,
  });
  return ok(book);
}

/**
 * Issues `period` when it has closed and is not issued yet, audited as `invoices.issue`
 * under `actor`. The first operator read of a closed period's invoices calls it, so what
 * finance first sees of a month is what stays on its invoices.
 */
export async function issueIfClosed(
  r: BillingResources,
  actor: string,
  period: string,
  now: Date,
): Promise<Result<void, DomainError>> {
  const checked = checkPeriod(period, now);
  if (!checked.ok) return checked;
  if (!isClosed(period, now) || (await findIssuedPeriod(r.db, period))) return ok(undefined);
  const issued = await issuePeriod(r.db, period, now);
  if (!issued.ok) return issued;
  if (issued.value.issuedNow)
    await r.audit.record({
      actor,
      action: "invoices.issue",
      resource: `period:${period}`,
      decision: "OK",
      reason: `issued at ${issued.value.issuedAt.toISOString()}`,
    });
  return ok(undefined);
}

/** Operators (ADMIN, FINANCE) issue a closed period by reading it; tenants only read. */
async function issueForOperator(r: BillingResources, principal: Principal, period: string, now: Date) {
  return principal.role === "TENANT" ? ok(undefined) : issueIfClosed(r, actorOf(principal), period, now);
}

/** `invoice(tenantId, period)` for a caller allowed to see the tenant (the API checks ownership). */
export async function invoiceForCaller(
  r: BillingResources,
  principal: Principal,
  tenantId: string,
  period: string,
  now: Date,
): Promise<Result<InvoiceView, DomainError>> {
  const issued = await issueForOperator(r, principal, period, now);
  return issued.ok ? tenantInvoice(r.db, tenantId, { period, now }) : issued;
}

/** `invoices(period)`: every tenant's invoice with a line (operators only). */
export async function invoicesForCaller(
  r: BillingResources,
  principal: Principal,
  period: string,
  now: Date,
): Promise<Result<InvoiceView[], DomainError>> {
  const issued = await issueForOperator(r, principal, period, now);
  return issued.ok ? periodInvoices(r.db, { period, now }) : issued;
}
