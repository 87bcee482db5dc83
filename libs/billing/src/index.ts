/**
 * @lite/billing — price books, rating (usage × the book in force when it occurred),
 * invoices (drafts, issuance, late usage as adjustments), the CSV export and the
 * reconciliation of usage against completions. See README.md.
 */
export * from "./price-book";
export * from "./billing.service";
export * from "./money";
export * from "./period";
export * from "./price-schedule";
export * from "./rating";
export * from "./invoice";
export * from "./invoice-store";
export * from "./invoice.service";
export * from "./invoice-csv";
export * from "./reconcile";
