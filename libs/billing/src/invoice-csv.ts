import type { InvoiceView } from "./invoice";

/**
 * Invoices as CSV (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a
 * comma, quote or line break, quotes doubled), one row per invoice line after a header row.
 * Every row repeats its invoice's head (tenant, period, currency, status, issue time, total),
 * so a spreadsheet can filter and sum by any column; an invoice without lines still gets
 * one row, with the line columns empty. A text field that a spreadsheet would run as a
 * formula (starting with = + - @, tab or CR) is prefixed with a single quote.
 */
export const INVOICE_CSV_COLUMNS = [
  "period",
  "tenant_id",
  "tenant_name",
  "currency",
  "status",
  "issued_at",
  "line",
  "line_kind",
  "usage_period",
  "meter",
  "dimension",
  "price_book_id",
  "quantity",
  "unit_price",
  "amount",
  "invoice_total",
] as const;

function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Names and dimensions come from operators and tenants: never let them become formulas. */
function text(value: string | null): string {
  if (value === null) return "";
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function rowsOf(inv: InvoiceView): string[][] {
  const head = [
    inv.period,
    inv.tenantId,
    text(inv.tenantName),
    inv.currency,
    inv.status,
    inv.issuedAt ? inv.issuedAt.toISOString() : "",
  ];
  if (inv.lines.length === 0) return [[...head, "", "", "", "", "", "", "", "", "", inv.total]];
  return inv.lines.map((l, i) => [
    ...head,
    String(i + 1),
    l.adjustment ? "ADJUSTMENT" : "USAGE",
    l.usagePeriod,
    l.meter,
    text(l.dimension),
    l.priceBookId ?? "",
    l.quantity.toString(),
    l.unitPrice,
    l.amount,
    inv.total,
  ]);
}

export function invoicesToCsv(invoices: InvoiceView[]): string {
  const rows = [[...INVOICE_CSV_COLUMNS], ...invoices.flatMap(rowsOf)];
  return rows.map((r) => r.map(field).join(",")).join("\r\n") + "\r\n";
}

/** Reads CSV as written here (RFC 4180: quoted fields, doubled quotes, CRLF rows) back into rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && c === ",") {
      row.push(cell);
      cell = "";
    } else if (!quoted && c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else {
      cell += c;
    }
  }
  return rows;
}
