/**
 * `npm run billing:export -- --period YYYY-MM [--out FILE]`: the period's invoices as CSV
 * (libs/billing invoice-csv.ts), on stdout or written to FILE (replaced whole: written
 * beside it, then renamed). A closed period is issued first, as the first operator read
 * issues it through the API (audited `invoices.issue`, actor `cli:billing-export`); an
 * open period is exported as drafts (status DRAFT). A one-line summary goes to stderr.
 * Exit 0 written; 1 refused (e.g. a period priced in two currencies); 2 bad arguments or
 * configuration.
 */
import fs from "node:fs";
import path from "node:path";
import { AuditQueue } from "@lite/auth";
import { formatAmount, invoicesToCsv, issueIfClosed, Money, periodInvoices, type InvoiceView } from "@lite/billing";
import { argsOrExit, BadArgs, parseFlags, periodArg } from "./billing-args";
import { billingServicesOrExit } from "./billing-env";

const COMMAND = "billing:export";
const USAGE = "npm run billing:export -- --period YYYY-MM [--out FILE]";

function outArg(flags: Map<string, string>): string | null {
  const out = flags.get("out");
  if (out === undefined) return null;
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new BadArgs(`--out: no directory ${dir}`);
  return out;
}

function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** "billing:export 2026-11: 3 invoice(s), ISSUED, USD 12.34" (Σ totals per currency, exact). */
function summary(period: string, invoices: InvoiceView[]): string {
  const totals = new Map<string, Money>();
  for (const i of invoices) totals.set(i.currency, (totals.get(i.currency) ?? new Money(0)).plus(i.total));
  const sums = [...totals].map(([currency, sum]) => `${currency} ${formatAmount(sum, currency)}`);
  const status = invoices[0]?.status ?? "no usage";
  return [`${COMMAND} ${period}: ${invoices.length} invoice(s)`, status, ...sums].join(", ");
}

async function main(): Promise<number> {
  const now = new Date();
  const args = argsOrExit(COMMAND, USAGE, () => {
    const flags = parseFlags(process.argv.slice(2), ["period", "out"]);
    return { period: periodArg(flags, now), out: outArg(flags) };
  });
  const s = billingServicesOrExit(COMMAND);
  try {
    const audit = new AuditQueue({ redis: s.redis, keys: s.keys, db: s.db });
    const issued = await issueIfClosed({ db: s.db, audit }, "cli:billing-export", args.period, now);
    const invoices = issued.ok ? await periodInvoices(s.db, { period: args.period, now }) : issued;
    if (!invoices.ok) {
      process.stderr.write(`${COMMAND}: ${invoices.error.message}\n`);
      return 1;
    }
    const csv = invoicesToCsv(invoices.value);
    if (args.out) writeAtomically(args.out, csv);
    else process.stdout.write(csv);
    process.stderr.write(`${summary(args.period, invoices.value)}${args.out ? ` → ${args.out}` : ""}\n`);
    return 0;
  } finally {
    await s.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${COMMAND} failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
