import { DomainError, err, ok, type Meter, type Result } from "@lite/core";
import { formatAmount, formatUnitPrice, lineAmount, sumAmounts, type Money } from "./money";
import type { RatedLine } from "./rating";

/**
 * An invoice: one tenant, one period, one currency; a line per (month of use, meter,
 * dimension, price book) with quantity, unit price and amount; total = Σ line amounts
 * (money.ts holds the rounding rule). A DRAFT is computed from the usage on each read and
 * may still change; an ISSUED invoice was frozen when its period was issued and never
 * changes again (invoice.service.ts).
 */
export const INVOICE_STATUSES = ["DRAFT", "ISSUED"] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

export interface InvoiceLineView {
  meter: Meter;
  dimension: string | null;
  quantity: bigint;
  /** exact decimal string */
  unitPrice: string;
  /** quantity × unitPrice rounded half-even to the currency's minor unit */
  amount: string;
  /** the month the usage occurred in */
  usagePeriod: string;
  /** true when the usage belongs to an earlier, already issued period and arrived after it was issued */
  adjustment: boolean;
  /** the price book that rated it; null when none was in force (rated at 0) */
  priceBookId: string | null;
}

export interface InvoiceView {
  tenantId: string;
  tenantName: string;
  /** YYYY-MM */
  period: string;
  currency: string;
  status: InvoiceStatus;
  /** when the period was issued; null for a draft */
  issuedAt: Date | null;
  lines: InvoiceLineView[];
  /** Σ line amounts, exact */
  total: string;
}

export interface InvoiceHead {
  tenantId: string;
  tenantName: string;
  period: string;
  currency: string;
  status: InvoiceStatus;
  issuedAt: Date | null;
}

function mixedCurrencies(head: InvoiceHead, line: RatedLine): DomainError {
  return new DomainError(
    "CONFLICT",
    `period ${head.period} is rated with price books in ${head.currency} and ${line.currency} ` +
      `(book ${line.priceBookId}): an invoice has one currency`,
    { context: { period: head.period, tenantId: head.tenantId } },
  );
}

/** Prices each rated line and sums them; CONFLICT when a line's book is in another currency. */
export function assembleInvoice(head: InvoiceHead, rated: RatedLine[]): Result<InvoiceView, DomainError> {
  const lines: InvoiceLineView[] = [];
  const amounts: Money[] = [];
  for (const r of rated) {
    if (r.currency !== null && r.currency !== head.currency) return err(mixedCurrencies(head, r));
    const amount = lineAmount(r.quantity, r.unitPrice, head.currency);
    amounts.push(amount);
    lines.push({
      meter: r.meter,
      dimension: r.dimension,
      quantity: r.quantity,
      unitPrice: formatUnitPrice(r.unitPrice),
      amount: formatAmount(amount, head.currency),
      usagePeriod: r.usagePeriod,
      adjustment: r.usagePeriod !== head.period,
      priceBookId: r.priceBookId,
    });
  }
  return ok({ ...head, lines, total: formatAmount(sumAmounts(amounts), head.currency) });
}
