/**
 * Run inside a fresh clone by test/first-start.test.ts: the services bring-up of
 * `npm start` (persistent data under var/, as scripts/start.ts asks for it), started twice
 * on the same data, then the throw-away one of `npm test` (as scripts/test.ts); each must
 * answer SQL. Prints one JSON line per bring-up; a failure prints its one-line message.
 * `first-start.probe.ts <dir>`: one bring-up of npm start's kind with its data under <dir>.
 */
import { Client } from "pg";
import { bringUpServices } from "../scripts/services";

async function answer(databaseUrl: string): Promise<Record<string, unknown>> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query("SELECT current_user AS user, current_database() AS db, 6 * 7 AS answer");
    return r.rows[0] as Record<string, unknown>;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[services] ${line}\n`);
  // With an argument: one bring-up of npm start's kind on that data directory.
  const only = process.argv[2];
  const runs = only
    ? [{ run: "given", dataDir: only, persistent: true }]
    : [
        { run: "start", dataDir: "var", persistent: true },
        { run: "restart", dataDir: "var", persistent: true },
        { run: "test", dataDir: "var/test-run-probe", persistent: false },
      ];
  for (const { run, dataDir, persistent } of runs) {
    const started = Date.now();
    const services = await bringUpServices({}, { dataDir, persistent, log });
    try {
      const row = await answer(services.databaseUrl);
      console.log(JSON.stringify({ run, ...row, ms: Date.now() - started }));
    } finally {
      await services.stop();
    }
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
