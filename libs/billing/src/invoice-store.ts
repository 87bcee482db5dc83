import { Prisma, type PrismaClient, type Tx } from "@lite/db";
import type { Meter } from "@lite/core";
import type { InvoiceView } from "./invoice";
import { formatAmount, formatUnitPrice, Money } from "./money";
import { previousPeriod } from "./period";

/**
 * Issued invoices as stored: `InvoicePeriod` (one row per issued period), `Invoice` and
 * `InvoiceLine` (append-only: the migration drops updates and deletes). Quantities are
 * NUMERIC(38,0) and money NUMERIC, read back as exact strings.
 */
type Reader = Pick<PrismaClient, "invoicePeriod" | "invoice">;

export async function findIssuedPeriod(
  db: Pick<PrismaClient, "invoicePeriod">,
  period: string,
): Promise<{ period: string; issuedAt: Date } | null> {
  return db.invoicePeriod.findUnique({ where: { period } });
}

/**
 * The first month whose unbilled usage lands on `period`'s invoice: `period` itself, or the
 * start of the unbroken run of issued months just before it (their late usage is adjusted
 * here). A month that was never issued breaks the run: its usage waits for its own invoice.
 */
export async function adjustmentRunStart(db: Pick<PrismaClient, "invoicePeriod">, period: string): Promise<string> {
  const issued = await db.invoicePeriod.findMany({
    where: { period: { lt: period } },
    select: { period: true },
    orderBy: { period: "desc" },
  });
  let start = period;
  for (const p of issued) {
    if (p.period !== previousPeriod(start)) break;
    start = p.period;
  }
  return start;
}

/** The stored invoices of an issued period (one tenant's when given), by tenant id. */
export async function readIssuedInvoices(db: Reader, period: string, tenantId?: string): Promise<InvoiceView[]> {
  const rows = await db.invoice.findMany({
    where: { period, ...(tenantId ? { tenantId } : {}) },
    include: { lines: { orderBy: { position: "asc" } } },
    orderBy: { tenantId: "asc" },
  });
  return rows.map((r) => ({
    tenantId: r.tenantId,
    tenantName: r.tenantName,
    period: r.period,
    currency: r.currency,
    status: "ISSUED" as const,
    issuedAt: r.issuedAt,
    total: formatAmount(new Money(r.total.toString()), r.currency),
    lines: r.lines.map((l) => ({
      meter: l.meter as Meter,
      dimension: l.dimension,
      quantity: BigInt(l.quantity.toFixed(0)),
      unitPrice: formatUnitPrice(l.unitPrice),
      amount: formatAmount(new Money(l.amount.toString()), r.currency),
      usagePeriod: l.usagePeriod,
      adjustment: l.adjustment,
      priceBookId: l.priceBookId,
    })),
  }));
}

/** Stores a period as issued with its invoices (inside the issuing transaction). */
export async function writeIssuedInvoices(
  tx: Tx,
  period: string,
  issuedAt: Date,
  invoices: InvoiceView[],
): Promise<void> {
  await tx.invoicePeriod.create({ data: { period, issuedAt } });
  if (invoices.length === 0) return;
  await tx.invoice.createMany({
    data: invoices.map((i) => ({
      tenantId: i.tenantId,
      period,
      tenantName: i.tenantName,
      currency: i.currency,
      total: new Prisma.Decimal(i.total),
      issuedAt,
    })),
  });
  await tx.invoiceLine.createMany({
    data: invoices.flatMap((i) =>
      i.lines.map((l, position) => ({
        tenantId: i.tenantId,
        period,
        position,
        usagePeriod: l.usagePeriod,
        adjustment: l.adjustment,
        meter: l.meter,
        dimension: l.dimension,
        priceBookId: l.priceBookId,
        quantity: new Prisma.Decimal(l.quantity.toString()),
        unitPrice: new Prisma.Decimal(l.unitPrice),
        amount: new Prisma.Decimal(l.amount),
      })),
    ),
  });
}
