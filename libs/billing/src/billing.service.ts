import { DomainError, badInput, err, notImplemented, ok, type Result } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { actorOf, type AuditSink, type Principal } from "@lite/auth";
import {
  createPriceBook,
  currentPriceBook,
  ensureDefaultPriceBook,
  type PriceBookSpec,
  type StoredPriceBook,
} from "./price-book";

/** What the billing services work with. */
export interface BillingResources {
  db: PrismaClient;
  audit: Pick<AuditSink, "record">;
}

/**
 * The price book in force at `at`. Before any book exists (a fresh database whose start-up
 * work has not run yet) the default book is created first.
 */
export async function priceBookInForce(db: PrismaClient, at: Date): Promise<StoredPriceBook> {
  let book = await currentPriceBook(db, at);
  if (!book) {
    await ensureDefaultPriceBook(db);
    book = await currentPriceBook(db, at);
  }
  if (!book) throw new Error("no price book in force (every book starts in the future)");
  return book;
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

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** A billing period is a calendar month, `YYYY-MM`. */
export function checkPeriod(period: string): Result<string, DomainError> {
  return PERIOD.test(period) ? ok(period) : err(badInput("period", "must be YYYY-MM"));
}

/** Invoices are not built yet: a valid period answers NOT_IMPLEMENTED (one tenant's invoice). */
export function tenantInvoice(_tenantId: string, period: string): Result<never, DomainError> {
  const checked = checkPeriod(period);
  return checked.ok ? err(notImplemented("invoice")) : checked;
}

/** Every tenant's invoice for a period: not built yet either. */
export function periodInvoices(period: string): Result<never, DomainError> {
  const checked = checkPeriod(period);
  return checked.ok ? err(notImplemented("invoices")) : checked;
}
