import { Decimal as BaseDecimal } from "decimal.js";

/**
 * Exact money. decimal.js rounds every result to its `precision` significant digits (20 by
 * default, which would silently round a 19-digit quantity times an 18-digit price), so
 * billing uses its own constructor with 80 digits: a quantity (at most 38 digits) times a
 * unit price (30 digits) is exact, and so is any sum of such products.
 *
 * THE ROUNDING RULE (the only place money is rounded): each invoice line's amount is
 * quantity × unit price rounded half-even (banker's rounding) to the currency's minor unit
 * (ISO 4217 exponent: 2 for USD and EUR, 0 for JPY, 3 for KWD); an invoice's total is the sum
 * of its rounded line amounts, so total = Σ lines exactly and the total is never rounded again.
 */
export const Money = BaseDecimal.clone({
  precision: 80,
  rounding: BaseDecimal.ROUND_HALF_EVEN,
  toExpNeg: -40,
  toExpPos: 60,
});
export type Money = InstanceType<typeof Money>;

/** ISO 4217 currencies whose minor unit is not 1/100 (the exponent is the number of fractional digits). */
const MINOR_UNIT_DIGITS: Record<string, number> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

/** Fractional digits of the currency's minor unit (2 unless ISO 4217 says otherwise). */
export function minorUnitDigits(currency: string): number {
  return MINOR_UNIT_DIGITS[currency] ?? 2;
}

/** quantity × unitPrice, rounded half-even to the currency's minor unit (the rounding rule above). */
export function lineAmount(quantity: bigint, unitPrice: string, currency: string): Money {
  return new Money(quantity.toString())
    .times(new Money(unitPrice))
    .toDecimalPlaces(minorUnitDigits(currency), Money.ROUND_HALF_EVEN);
}

/** A money amount as the API writes it: exactly the currency's minor-unit digits ("12.30", "0.00", "7"). */
export function formatAmount(amount: Money, currency: string): string {
  return amount.toFixed(minorUnitDigits(currency));
}

/** A unit price as stored (up to 12 fractional digits), without trailing zeros ("0.000002"). */
export function formatUnitPrice(unitPrice: { toString(): string }): string {
  return new Money(unitPrice.toString()).toFixed();
}

/** Σ amounts, exact. */
export function sumAmounts(amounts: Money[]): Money {
  return amounts.reduce((acc, a) => acc.plus(a), new Money(0));
}
