/**
 * `npm run audit:verify`: walks the audit log (DATABASE_URL) and checks the hash chain.
 * Exit 0 with a summary when intact; exit 1 printing the first bad sequence number.
 */
import { z } from "zod";
import { parseEnvOrExit, urlVar } from "@lite/config";
import { createDb } from "@lite/db";
import { verifyAuditChain } from "@lite/auth";

const Env = z.object({
  DATABASE_URL: urlVar(["postgresql:", "postgres:"]).refine(
    (v) => v !== undefined,
    "is required (the database whose audit log to verify)",
  ),
});

async function main(): Promise<number> {
  const env = parseEnvOrExit(Env);
  const db = createDb({ url: env.DATABASE_URL as string, poolSize: 2 });
  try {
    const verdict = await verifyAuditChain(db);
    if (verdict.ok) {
      process.stdout.write(
        `audit log intact: ${verdict.rows} entries, last seq ${verdict.lastSeq}, head ${verdict.lastHash}\n`,
      );
      return 0;
    }
    process.stdout.write(
      `audit log BROKEN at seq ${verdict.badSeq}: ${verdict.problem} (${verdict.rows} entries verified before it)\n`,
    );
    return 1;
  } finally {
    await db.$disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`audit:verify failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
