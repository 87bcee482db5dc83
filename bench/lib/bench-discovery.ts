import * as fs from "node:fs";
import * as path from "node:path";
import type { Benchmark } from "./bench-types";

/** Every `bench/*.bench.ts`, loaded and checked for the Benchmark shape, sorted by name. */
export function discoverBenchmarks(benchDir: string): { file: string; bench: Benchmark }[] {
  return fs
    .readdirSync(benchDir)
    .filter((f) => f.endsWith(".bench.ts"))
    .sort()
    .map((f) => {
      const file = path.join(benchDir, f);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(file) as { default?: unknown; bench?: unknown } & Record<string, unknown>;
      const candidate = (mod.default ?? mod.bench ?? mod) as Partial<Benchmark>;
      if (
        typeof candidate.name !== "string" ||
        typeof candidate.run !== "function" ||
        typeof candidate.description !== "string"
      ) {
        throw new Error(`${f} must export { name, description, run(ctx) } (as default or \`bench\`)`);
      }
      return { file, bench: candidate as Benchmark };
    });
}
