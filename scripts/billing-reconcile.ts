/**
 * `npm run billing:reconcile -- --period YYYY-MM`: checks the period's usage against its
 * completions (libs/billing reconcile.ts): per completion, OUTPUT_TOKENS billed = the tokens
 * its stream holds (while retained) or its row's; no usage event twice. Prints one line per
 * mismatch and a verdict. Exit 0 clean; 1 with every mismatch named; 2 bad arguments or
 * configuration.
 */
import { formatReconcileReport, reconcilePeriod, type StreamTokenCounter } from "@lite/billing";
import { TokenStreams } from "@lite/stream";
import { argsOrExit, parseFlags, periodArg } from "./billing-args";
import { billingServicesOrExit } from "./billing-env";

const COMMAND = "billing:reconcile";
const USAGE = "npm run billing:reconcile -- --period YYYY-MM";

/** Tokens before the done event; null when the stream is gone (the row is the evidence then). */
function streamCounter(streams: TokenStreams): StreamTokenCounter {
  return {
    async streamedTokens(tenantId, completionId) {
      const events = await streams.readAll(tenantId, completionId);
      return events.length === 0 ? null : events.filter((e) => !e.done).length;
    },
  };
}

async function main(): Promise<number> {
  const now = new Date();
  const period = argsOrExit(COMMAND, USAGE, () => periodArg(parseFlags(process.argv.slice(2), ["period"]), now));
  const s = billingServicesOrExit(COMMAND);
  const streams = new TokenStreams({ redis: s.redis, keys: s.keys });
  try {
    const report = await reconcilePeriod(s.db, streamCounter(streams), period);
    process.stdout.write(formatReconcileReport(report));
    return report.mismatches.length === 0 ? 0 : 1;
  } finally {
    await streams.close();
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
