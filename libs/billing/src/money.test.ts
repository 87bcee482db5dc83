import { Decimal } from "decimal.js";
import { formatAmount, formatUnitPrice, lineAmount, minorUnitDigits, Money, sumAmounts } from "./money";

/** Independent reference: q × (price × 10^12) in bigint, rounded half-even to 10^-digits. */
function referenceAmount(q: bigint, priceScaled: bigint, digits: number): string {
  const exact = q * priceScaled; // units of 10^-12
  const div = 10n ** BigInt(12 - digits);
  let units = exact / div;
  const rest = exact % div;
  if (rest * 2n > div || (rest * 2n === div && units % 2n === 1n)) units += 1n;
  const s = units.toString().padStart(digits + 1, "0");
  return digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

describe("the rounding rule: each line half-even to the currency's minor unit", () => {
  it.each([
    [1n, "0.005", "0.00"], // half → even (0)
    [1n, "0.015", "0.02"], // half → even (2)
    [1n, "0.025", "0.02"],
    [1n, "0.0250000001", "0.03"], // just above half
    [3n, "0.005", "0.02"], // 0.015
    [333333n, "0.000002", "0.67"], // 0.666666
    [0n, "123.45", "0.00"],
  ])("%s × %s USD = %s", (q, price, amount) => {
    expect(formatAmount(lineAmount(q, price, "USD"), "USD")).toBe(amount);
  });

  it("uses the ISO 4217 exponent: JPY 0 digits, KWD 3, unknown codes 2", () => {
    expect(minorUnitDigits("JPY")).toBe(0);
    expect(minorUnitDigits("KWD")).toBe(3);
    expect(minorUnitDigits("USD")).toBe(2);
    expect(minorUnitDigits("XYZ")).toBe(2);
    expect(formatAmount(lineAmount(1n, "0.5", "JPY"), "JPY")).toBe("0");
    expect(formatAmount(lineAmount(1n, "1.5", "JPY"), "JPY")).toBe("2");
    expect(formatAmount(lineAmount(1n, "0.0005", "KWD"), "KWD")).toBe("0.000");
    expect(formatAmount(lineAmount(3n, "0.0005", "KWD"), "KWD")).toBe("0.002");
  });

  it("is exact at the limits: the largest BigInt quantity times the largest unit price (18 + 12 digits)", () => {
    const q = 2n ** 63n - 1n;
    const price = "999999999999999999.999999999999";
    const scaled = 999999999999999999999999999999n;
    expect(formatAmount(lineAmount(q, price, "USD"), "USD")).toBe(referenceAmount(q, scaled, 2));
    expect(formatAmount(lineAmount(q, price, "KWD"), "KWD")).toBe(referenceAmount(q, scaled, 3));
    // the default decimal.js precision (20 significant digits) would have rounded this product
    expect(new Decimal(q.toString()).times(price).toFixed(2)).not.toBe(referenceAmount(q, scaled, 2));
  });

  it("sums exactly and formats with the minor unit's digits", () => {
    const parts = ["0.10", "0.20", "0.30"].map((s) => new Money(s));
    expect(formatAmount(sumAmounts(parts), "USD")).toBe("0.60");
    expect(formatAmount(sumAmounts([]), "USD")).toBe("0.00");
    expect(formatUnitPrice("0.000002000000")).toBe("0.000002");
    expect(formatUnitPrice("12")).toBe("12");
  });
});
