-- AlterTable
ALTER TABLE "UsageEvent" ADD COLUMN     "invoicedPeriod" TEXT;

-- CreateTable
CREATE TABLE "InvoicePeriod" (
    "period" TEXT NOT NULL,
    "issuedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "InvoicePeriod_pkey" PRIMARY KEY ("period")
);

-- CreateTable
CREATE TABLE "Invoice" (
    "tenantId" TEXT NOT NULL,
    "period" TEXT NOT NULL,
    "tenantName" TEXT NOT NULL,
    "currency" TEXT NOT NULL,
    "total" DECIMAL(50,12) NOT NULL,
    "issuedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Invoice_pkey" PRIMARY KEY ("tenantId","period")
);

-- CreateTable
CREATE TABLE "InvoiceLine" (
    "tenantId" TEXT NOT NULL,
    "period" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "usagePeriod" TEXT NOT NULL,
    "adjustment" BOOLEAN NOT NULL,
    "meter" "Meter" NOT NULL,
    "dimension" TEXT,
    "priceBookId" TEXT,
    "quantity" DECIMAL(38,0) NOT NULL,
    "unitPrice" DECIMAL(30,12) NOT NULL,
    "amount" DECIMAL(50,12) NOT NULL,

    CONSTRAINT "InvoiceLine_pkey" PRIMARY KEY ("tenantId","period","position")
);

-- CreateIndex
CREATE INDEX "UsageEvent_invoicedPeriod_occurredAt_idx" ON "UsageEvent"("invoicedPeriod", "occurredAt");

-- CreateIndex
CREATE INDEX "UsageEvent_completionId_idx" ON "UsageEvent"("completionId");

-- CreateIndex
CREATE INDEX "Invoice_period_tenantId_idx" ON "Invoice"("period", "tenantId");

-- AddForeignKey
ALTER TABLE "Invoice" ADD CONSTRAINT "Invoice_period_fkey" FOREIGN KEY ("period") REFERENCES "InvoicePeriod"("period") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "InvoiceLine" ADD CONSTRAINT "InvoiceLine_tenantId_period_fkey" FOREIGN KEY ("tenantId", "period") REFERENCES "Invoice"("tenantId", "period") ON DELETE CASCADE ON UPDATE CASCADE;

-- Issued invoices are frozen: updates and deletes are silently dropped (rules, as for the
-- audit log: Prisma's migration runner splits scripts on semicolons, so no plpgsql).
CREATE RULE "InvoicePeriod_no_update" AS ON UPDATE TO "InvoicePeriod" DO INSTEAD NOTHING;
CREATE RULE "InvoicePeriod_no_delete" AS ON DELETE TO "InvoicePeriod" DO INSTEAD NOTHING;
CREATE RULE "Invoice_no_update" AS ON UPDATE TO "Invoice" DO INSTEAD NOTHING;
CREATE RULE "Invoice_no_delete" AS ON DELETE TO "Invoice" DO INSTEAD NOTHING;
CREATE RULE "InvoiceLine_no_update" AS ON UPDATE TO "InvoiceLine" DO INSTEAD NOTHING;
CREATE RULE "InvoiceLine_no_delete" AS ON DELETE TO "InvoiceLine" DO INSTEAD NOTHING;

-- A usage event an issued invoice billed is evidence for that invoice: it is never removed.
-- (No UPDATE rule: PostgreSQL refuses INSERT … ON CONFLICT, which the usage writer uses, on a
-- table with one. Billed events are only ever marked, by libs/billing's issuance.)
CREATE RULE "UsageEvent_billed_no_delete" AS ON DELETE TO "UsageEvent" WHERE OLD."invoicedPeriod" IS NOT NULL DO INSTEAD NOTHING;
