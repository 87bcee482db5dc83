import { GqlHttp } from "@lite/testing";

/** The demo's last section: each tenant's invoice for the current month, read with its own key. */

interface InvoiceLineView {
  meter: string;
  dimension: string | null;
  quantity: string;
  unitPrice: string;
  amount: string;
  adjustment: boolean;
  usagePeriod: string;
}
interface InvoiceView {
  tenantName: string;
  period: string;
  status: string;
  currency: string;
  total: string;
  lines: InvoiceLineView[];
}

const INVOICE_QUERY = `query($id: ID!, $p: String!) {
  invoice(tenantId: $id, period: $p) {
    tenantName period status currency total
    lines { meter dimension quantity unitPrice amount adjustment usagePeriod }
  }
}`;

/** Prints each tenant's invoice of `period` (YYYY-MM): a line per meter and dimension, then the total. */
export async function printInvoices(
  url: string,
  tenants: ReadonlyArray<{ id: string; name: string; key: string }>,
  period: string,
): Promise<void> {
  console.log(`\ninvoices for ${period} (each read with the tenant's own key):`);
  let allZero = true;
  for (const t of tenants) {
    const r = await new GqlHttp(url, t.key).request<{ invoice: InvoiceView }>(INVOICE_QUERY, { id: t.id, p: period });
    const inv = r.data?.invoice;
    if (!inv) {
      console.log(`\n  ${t.name}: invoice unavailable (${r.errors?.[0]?.message ?? `HTTP ${r.status}`})`);
      continue;
    }
    console.log(`\n  ${inv.tenantName} — ${inv.period}, ${inv.status}, ${inv.currency}`);
    console.log(
      `    ${"meter".padEnd(20)} ${"dimension".padEnd(14)} ${"quantity".padStart(14)} ${"unit price".padStart(14)} ${"amount".padStart(12)}`,
    );
    for (const l of inv.lines) {
      const dim = (l.dimension ?? "") + (l.adjustment ? ` (adj. ${l.usagePeriod})` : "");
      console.log(
        `    ${l.meter.padEnd(20)} ${dim.padEnd(14)} ${l.quantity.padStart(14)} ${l.unitPrice.padStart(14)} ${l.amount.padStart(12)}`,
      );
    }
    console.log(
      `    ${"total".padEnd(20)} ${"".padEnd(14)} ${"".padStart(14)} ${"".padStart(14)} ${inv.total.padStart(12)}`,
    );
    if (Number(inv.total) !== 0) allZero = false;
  }
  if (allZero)
    console.log(
      "\n(every amount is 0: the default price book prices every meter at 0 until finance sets one with setPriceBook)",
    );
}
