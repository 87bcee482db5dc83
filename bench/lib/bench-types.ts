/**
 * The contract between `bench/run.ts` and each `bench/<name>.bench.ts`. A bench file's
 * default (or named `bench`) export is a Benchmark; `run` returns JSON-able figures plus a
 * markdown `summary`, which the runner copies into bench/RESULTS.md.
 */
export interface BenchContext {
  /** repository root (absolute) */
  rootDir: string;
  /** MODEL_DIR or var/models, absolute */
  modelDir: string;
  /** logical cores of this machine */
  cores: number;
  /** progress lines, to stderr */
  log(message: string): void;
}

export interface BenchResult {
  /** markdown: what was measured, the figures, and the ratios against the baseline */
  summary: string;
  [figure: string]: unknown;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}

/** What the runner writes to bench/results/<name>.json. */
export interface BenchRecord {
  name: string;
  description: string;
  date: string;
  durationMs: number;
  machine: { cores: number; cpu: string; memoryBytes: number; node: string; platform: string };
  result: BenchResult;
}
