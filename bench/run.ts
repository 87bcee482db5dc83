/**
 * `npm run bench [-- NAME…]`: runs every bench/*.bench.ts (or the named ones), writes
 * bench/results/<name>.json with the machine's core count, node version and date, then
 * regenerates bench/RESULTS.md from all result JSONs present (so benches run separately
 * still end up in one report). Exit 1 if any bench fails or a name is unknown.
 */
import * as os from "node:os";
import * as path from "node:path";
import { discoverBenchmarks } from "./lib/bench-discovery";
import type { BenchContext, BenchRecord } from "./lib/bench-types";
import { writeRecord, writeResultsMarkdown } from "./lib/results-report";

async function main(): Promise<number> {
  const benchDir = __dirname;
  const rootDir = path.resolve(benchDir, "..");
  const resultsDir = path.join(benchDir, "results");
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const all = discoverBenchmarks(benchDir);
  const unknown = wanted.filter((n) => !all.some((b) => b.bench.name === n));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown benchmark(s) ${unknown.join(", ")}; known: ${all.map((b) => b.bench.name).join(", ")}\n`,
    );
    return 1;
  }
  const selected = wanted.length > 0 ? all.filter((b) => wanted.includes(b.bench.name)) : all;
  const ctx: BenchContext = {
    rootDir,
    modelDir: path.resolve(rootDir, process.env.MODEL_DIR ?? "var/models"),
    cores: os.cpus().length,
    log: (m) => process.stderr.write(`${m}\n`),
  };
  let failed = 0;
  for (const { bench } of selected) {
    ctx.log(`bench ${bench.name}: ${bench.description}`);
    const started = Date.now();
    try {
      const result = await bench.run(ctx);
      const record: BenchRecord = {
        name: bench.name,
        description: bench.description,
        date: new Date().toISOString(),
        durationMs: Date.now() - started,
        machine: {
          cores: ctx.cores,
          cpu: os.cpus()[0]?.model ?? "unknown",
          memoryBytes: os.totalmem(),
          node: process.version,
          platform: `${process.platform}-${process.arch}`,
        },
        result,
      };
      ctx.log(`bench ${bench.name}: wrote ${path.relative(rootDir, writeRecord(resultsDir, record))}`);
      process.stdout.write(`${result.summary.trim()}\n\n`);
    } catch (e) {
      failed++;
      ctx.log(`bench ${bench.name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  ctx.log(`bench: regenerated ${path.relative(rootDir, writeResultsMarkdown(benchDir, resultsDir))}`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
