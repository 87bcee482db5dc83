import { Decimal } from "decimal.js";
import { badInput, METERS, newId, type Meter } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";

/**
 * Price books: a currency, the instant from which they apply, and one unit price per
 * (meter, dimension). The book in force at time T is the one with the latest
 * effectiveFrom ≤ T (latest created wins a tie). Money is exact decimal end to end
 * (decimal.js / Prisma.Decimal, NUMERIC(30,12) in PostgreSQL), never a float.
 */
export { METERS, type Meter };

export interface PriceSpec {
  meter: Meter;
  dimension: string | null;
  /** exact decimal string, ≥ 0, at most 12 fractional digits */
  unitPrice: string;
  unit: string;
}

export interface PriceBookSpec {
  currency: string;
  effectiveFrom: Date;
  prices: PriceSpec[];
}

export const DEFAULT_PRICE_BOOK_ID = "pb_default";

/** Created at first start: every meter at zero until finance sets a book (README.md). */
export const DEFAULT_PRICE_BOOK: PriceBookSpec = {
  currency: "USD",
  effectiveFrom: new Date("2020-01-01T00:00:00.000Z"),
  prices: [
    { meter: "INPUT_TOKENS", dimension: null, unitPrice: "0", unit: "1 token" },
    { meter: "OUTPUT_TOKENS", dimension: null, unitPrice: "0", unit: "1 token" },
    { meter: "EXPERT_CALLS", dimension: null, unitPrice: "0", unit: "1 expert call" },
    { meter: "PREFETCH_BYTES", dimension: null, unitPrice: "0", unit: "1 byte" },
    { meter: "TIERSET_ACTIVATIONS", dimension: null, unitPrice: "0", unit: "1 activation" },
    { meter: "KV_BYTE_SECONDS", dimension: null, unitPrice: "0", unit: "1 byte-second" },
  ],
};

const MAX_FRACTION_DIGITS = 12;
const MAX_INTEGER_DIGITS = 18;

/** Throws BAD_USER_INPUT naming the offending field. */
export function validatePriceBook(spec: PriceBookSpec, field = "input"): void {
  if (!/^[A-Z]{3}$/.test(spec.currency)) throw badInput(`${field}.currency`, "must be an ISO 4217 code such as USD");
  if (Number.isNaN(spec.effectiveFrom.getTime())) throw badInput(`${field}.effectiveFrom`, "must be a valid instant");
  if (spec.prices.length === 0) throw badInput(`${field}.prices`, "must list at least one price");
  const seen = new Set<string>();
  spec.prices.forEach((p, i) => {
    const f = `${field}.prices.${i}`;
    if (!METERS.includes(p.meter)) throw badInput(`${f}.meter`, "unknown meter");
    let price: Decimal;
    try {
      price = new Decimal(p.unitPrice);
    } catch {
      throw badInput(`${f}.unitPrice`, "must be a decimal number");
    }
    if (!price.isFinite() || price.isNegative()) throw badInput(`${f}.unitPrice`, "must be a decimal ≥ 0");
    if (price.decimalPlaces() > MAX_FRACTION_DIGITS)
      throw badInput(`${f}.unitPrice`, `at most ${MAX_FRACTION_DIGITS} fractional digits`);
    if (price.trunc().toFixed().replace("-", "").length > MAX_INTEGER_DIGITS)
      throw badInput(`${f}.unitPrice`, "too large");
    if (p.unit.trim() === "") throw badInput(`${f}.unit`, "must say what one unit is");
    if (p.dimension !== null && p.dimension.trim() === "")
      throw badInput(`${f}.dimension`, "must be null or non-empty");
    const key = `${p.meter}\u0000${p.dimension ?? ""}`;
    if (seen.has(key)) throw badInput(`${f}`, `duplicate price for ${p.meter}${p.dimension ? `/${p.dimension}` : ""}`);
    seen.add(key);
  });
}

export type StoredPriceBook = Prisma.PriceBookGetPayload<{ include: { prices: true } }>;

export async function createPriceBook(
  db: Pick<PrismaClient, "priceBook">,
  spec: PriceBookSpec,
  id: string = newId("priceBook"),
): Promise<StoredPriceBook> {
  validatePriceBook(spec);
  return db.priceBook.create({
    data: {
      id,
      currency: spec.currency,
      effectiveFrom: spec.effectiveFrom,
      prices: {
        create: spec.prices.map((p) => ({
          id: newId("priceBook"),
          meter: p.meter,
          dimension: p.dimension,
          unitPrice: new Prisma.Decimal(p.unitPrice),
          unit: p.unit,
        })),
      },
    },
    include: { prices: { orderBy: [{ meter: "asc" }, { dimension: "asc" }] } },
  });
}

/** Idempotent, and safe when several processes start at once. */
export async function ensureDefaultPriceBook(db: Pick<PrismaClient, "priceBook">): Promise<boolean> {
  if ((await db.priceBook.count()) > 0) return false;
  try {
    await createPriceBook(db, DEFAULT_PRICE_BOOK, DEFAULT_PRICE_BOOK_ID);
    return true;
  } catch (e) {
    if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") return false;
    throw e;
  }
}

export async function currentPriceBook(db: Pick<PrismaClient, "priceBook">, at: Date): Promise<StoredPriceBook | null> {
  return db.priceBook.findFirst({
    where: { effectiveFrom: { lte: at } },
    orderBy: [{ effectiveFrom: "desc" }, { createdAt: "desc" }, { id: "desc" }],
    include: { prices: { orderBy: [{ meter: "asc" }, { dimension: "asc" }] } },
  });
}

/**
 * The price book in force at `at`. Before any book exists (a fresh database whose start-up
 * work has not run yet) the default book is created first.
 */
export async function priceBookInForce(db: Pick<PrismaClient, "priceBook">, at: Date): Promise<StoredPriceBook> {
  let book = await currentPriceBook(db, at);
  if (!book) {
    await ensureDefaultPriceBook(db);
    book = await currentPriceBook(db, at);
  }
  if (!book) throw new Error("no price book in force (every book starts in the future)");
  return book;
}
