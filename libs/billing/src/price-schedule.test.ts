import { Prisma } from "@lite/db";
import type { StoredPriceBook } from "./price-book";
import { ratingSpans, unitPriceOf } from "./price-schedule";

function book(
  id: string,
  effectiveFrom: string,
  createdAt: string,
  prices: Array<[string, string | null, string]> = [],
) {
  return {
    id,
    currency: "USD",
    effectiveFrom: new Date(effectiveFrom),
    createdAt: new Date(createdAt),
    prices: prices.map(([meter, dimension, unitPrice], i) => ({
      id: `${id}-${i}`,
      priceBookId: id,
      meter,
      dimension,
      unitPrice: new Prisma.Decimal(unitPrice),
      unit: "1 unit",
    })),
  } as unknown as StoredPriceBook;
}

const spansOf = (books: StoredPriceBook[], from: string, to: string) =>
  ratingSpans(books, new Date(from), new Date(to)).map((s) => [
    s.from.toISOString(),
    s.to.toISOString(),
    s.usagePeriod,
    s.book?.id ?? null,
  ]);

describe("rating spans", () => {
  it("cut at each book's effectiveFrom and at each month start; each span under the book in force at its start", () => {
    const books = [
      book("b1", "2024-02-15T00:00:00Z", "2024-01-01T00:00:00Z"),
      book("b2", "2024-03-20T12:00:00Z", "2024-01-01T00:00:00Z"),
      book("b3", "2024-04-10T00:00:00Z", "2024-01-01T00:00:00Z"),
    ];
    expect(spansOf(books, "2024-03-01T00:00:00Z", "2024-05-01T00:00:00Z")).toEqual([
      ["2024-03-01T00:00:00.000Z", "2024-03-20T12:00:00.000Z", "2024-03", "b1"],
      ["2024-03-20T12:00:00.000Z", "2024-04-01T00:00:00.000Z", "2024-03", "b2"],
      ["2024-04-01T00:00:00.000Z", "2024-04-10T00:00:00.000Z", "2024-04", "b2"],
      ["2024-04-10T00:00:00.000Z", "2024-05-01T00:00:00.000Z", "2024-04", "b3"],
    ]);
  });

  it("same effectiveFrom: the latest created wins; before the first book: no book (unpriced)", () => {
    const books = [
      book("late", "2024-03-10T00:00:00Z", "2024-03-02T00:00:00Z"),
      book("early", "2024-03-10T00:00:00Z", "2024-03-01T00:00:00Z"),
    ];
    expect(spansOf(books, "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")).toEqual([
      ["2024-03-01T00:00:00.000Z", "2024-03-10T00:00:00.000Z", "2024-03", null],
      ["2024-03-10T00:00:00.000Z", "2024-04-01T00:00:00.000Z", "2024-03", "late"],
    ]);
  });

  it("a book taking effect exactly at the range's start covers it without an empty span", () => {
    const books = [book("b", "2024-03-01T00:00:00Z", "2024-01-01T00:00:00Z")];
    expect(spansOf(books, "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")).toEqual([
      ["2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z", "2024-03", "b"],
    ]);
  });
});

describe("unit prices", () => {
  const b = book("b", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", [
    ["EXPERT_CALLS", null, "0.0000001"],
    ["EXPERT_CALLS", "tiny.t1", "0.0000003"],
    ["OUTPUT_TOKENS", null, "0.000002"],
  ]);
  it("the exact dimension first, else the meter's null-dimension price, else none", () => {
    expect(unitPriceOf(b, "EXPERT_CALLS", "tiny.t1")).toBe("0.0000003");
    expect(unitPriceOf(b, "EXPERT_CALLS", "tiny.t2")).toBe("0.0000001");
    expect(unitPriceOf(b, "OUTPUT_TOKENS", null)).toBe("0.000002");
    expect(unitPriceOf(b, "INPUT_TOKENS", null)).toBeNull();
    expect(unitPriceOf(null, "OUTPUT_TOKENS", null)).toBeNull();
  });
});
