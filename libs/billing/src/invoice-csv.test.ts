import type { InvoiceView } from "./invoice";
import { INVOICE_CSV_COLUMNS, invoicesToCsv, parseCsv } from "./invoice-csv";

const base: InvoiceView = {
  tenantId: "ten_a",
  tenantName: 'Acme, "the" best',
  period: "2026-11",
  currency: "USD",
  status: "ISSUED",
  issuedAt: new Date("2026-12-01T00:00:05.000Z"),
  total: "3.50",
  lines: [
    {
      meter: "OUTPUT_TOKENS",
      dimension: null,
      quantity: 1000000n,
      unitPrice: "0.000002",
      amount: "2.00",
      usagePeriod: "2026-11",
      adjustment: false,
      priceBookId: "pb_1",
    },
    {
      meter: "EXPERT_CALLS",
      dimension: "tiny.t1",
      quantity: 15n,
      unitPrice: "0.1",
      amount: "1.50",
      usagePeriod: "2026-10",
      adjustment: true,
      priceBookId: "pb_0",
    },
  ],
};

describe("invoice CSV", () => {
  it("writes a header and one row per line, quoting commas and quotes; reads back to the same values", () => {
    const rows = parseCsv(invoicesToCsv([base]));
    expect(rows[0]).toEqual([...INVOICE_CSV_COLUMNS]);
    expect(rows).toHaveLength(3);
    const rec = rows.slice(1).map((r) => Object.fromEntries(r.map((v, i) => [INVOICE_CSV_COLUMNS[i], v])));
    expect(rec[0]).toMatchObject({
      tenant_name: 'Acme, "the" best',
      line: "1",
      line_kind: "USAGE",
      meter: "OUTPUT_TOKENS",
      dimension: "",
      quantity: "1000000",
      amount: "2.00",
      invoice_total: "3.50",
      issued_at: "2026-12-01T00:00:05.000Z",
    });
    expect(rec[1]).toMatchObject({ line_kind: "ADJUSTMENT", usage_period: "2026-10", dimension: "tiny.t1" });
  });

  it("keeps an invoice without lines as one row with its total, and never writes a formula", () => {
    const empty: InvoiceView = {
      ...base,
      tenantName: '=HYPERLINK("x")',
      lines: [],
      total: "0.00",
      status: "DRAFT",
      issuedAt: null,
    };
    const rows = parseCsv(invoicesToCsv([empty]));
    expect(rows).toHaveLength(2);
    expect(rows[1][2]).toBe('\'=HYPERLINK("x")');
    expect(rows[1][4]).toBe("DRAFT");
    expect(rows[1][5]).toBe("");
    expect(rows[1][INVOICE_CSV_COLUMNS.indexOf("invoice_total")]).toBe("0.00");
    expect(rows[1][INVOICE_CSV_COLUMNS.indexOf("line")]).toBe("");
  });
});
