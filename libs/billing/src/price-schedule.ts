import type { Meter } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { currentPriceBook, type StoredPriceBook } from "./price-book";
import { nextPeriod, periodOf, periodStart } from "./period";

/**
 * Which price book rates usage at each instant. Usage is rated with the book in force when
 * it happened (its occurredAt), so a range is cut into spans, each inside one calendar
 * month and under one book:
 *   1. load the book in force at the range's start and every book taking effect inside it;
 *   2. among books with the same effectiveFrom, the latest created wins (ties as
 *      `currentPriceBook` breaks them);
 *   3. cut [from, to) at each winner's effectiveFrom and at each month start;
 *   4. each span is rated by the last winner whose effectiveFrom ≤ the span's start (none
 *      before the first book: such usage is unpriced and rated at 0).
 */
export interface RatingSpan {
  /** position in the list, used to join usage to its span in SQL */
  index: number;
  from: Date;
  /** exclusive */
  to: Date;
  /** the month the span is in, YYYY-MM */
  usagePeriod: string;
  /** the book in force over the span; null when none was yet */
  book: StoredPriceBook | null;
}

/** The books that can be in force somewhere in [from, to). */
export async function booksForRange(
  db: Pick<PrismaClient, "priceBook">,
  from: Date,
  to: Date,
): Promise<StoredPriceBook[]> {
  const first = await currentPriceBook(db, from);
  const later = await db.priceBook.findMany({
    where: { effectiveFrom: { gt: from, lt: to } },
    include: { prices: true },
  });
  return first ? [first, ...later] : later;
}

/** One book per effectiveFrom (the latest created), sorted by effectiveFrom. */
function winners(books: StoredPriceBook[]): StoredPriceBook[] {
  const sorted = [...books].sort(
    (a, b) =>
      a.effectiveFrom.getTime() - b.effectiveFrom.getTime() ||
      a.createdAt.getTime() - b.createdAt.getTime() ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const byInstant = new Map<number, StoredPriceBook>();
  for (const b of sorted) byInstant.set(b.effectiveFrom.getTime(), b);
  return [...byInstant.values()];
}

function monthStartsInside(from: Date, to: Date): number[] {
  const out: number[] = [];
  for (let p = nextPeriod(periodOf(from)); periodStart(p).getTime() < to.getTime(); p = nextPeriod(p)) {
    out.push(periodStart(p).getTime());
  }
  return out;
}

export function ratingSpans(books: StoredPriceBook[], from: Date, to: Date): RatingSpan[] {
  const ordered = winners(books);
  const cuts = new Set<number>([from.getTime(), to.getTime(), ...monthStartsInside(from, to)]);
  for (const b of ordered) {
    const t = b.effectiveFrom.getTime();
    if (t > from.getTime() && t < to.getTime()) cuts.add(t);
  }
  const edges = [...cuts].sort((a, b) => a - b);
  const spans: RatingSpan[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const start = edges[i];
    const inForce = ordered.filter((b) => b.effectiveFrom.getTime() <= start).pop() ?? null;
    spans.push({
      index: i,
      from: new Date(start),
      to: new Date(edges[i + 1]),
      usagePeriod: periodOf(new Date(start)),
      book: inForce,
    });
  }
  return spans;
}

/**
 * The unit price of (meter, dimension) in a book: the price for that exact dimension, else
 * the meter's price with a null dimension (it prices every dimension), else none (unpriced:
 * rated at 0, see README).
 */
export function unitPriceOf(book: StoredPriceBook | null, meter: Meter, dimension: string | null): string | null {
  if (!book) return null;
  const exact = book.prices.find((p) => p.meter === meter && p.dimension === dimension);
  const any = book.prices.find((p) => p.meter === meter && p.dimension === null);
  const price = exact ?? any;
  return price ? price.unitPrice.toFixed() : null;
}
