/**
 * Arguments of `npm run billing:export` and `npm run billing:reconcile`: `--period YYYY-MM`
 * (or `--period=YYYY-MM`) and the flags each command names. A bad argument is one line on
 * stderr and exit 2 (BAD_ARGS_EXIT), before any connection is made.
 */
import { checkPeriod } from "@lite/billing";

export const BAD_ARGS_EXIT = 2;

export class BadArgs extends Error {}

/** `--name value` / `--name=value` pairs; every flag takes a value, each may be given once. */
export function parseFlags(argv: string[], allowed: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !allowed.includes(m[1])) throw new BadArgs(`unknown argument ${JSON.stringify(arg)}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === "") throw new BadArgs(`--${m[1]} needs a value`);
    if (flags.has(m[1])) throw new BadArgs(`--${m[1]} given twice`);
    flags.set(m[1], value);
  }
  return flags;
}

/** The period argument, required, checked as the API checks it (YYYY-MM, 2020-01 … the month in progress). */
export function periodArg(flags: Map<string, string>, now: Date): string {
  const period = flags.get("period");
  if (period === undefined) throw new BadArgs("--period YYYY-MM is required");
  const checked = checkPeriod(period, now);
  if (!checked.ok) throw new BadArgs(`--period ${checked.error.message.replace(/^period: /, "")}`);
  return period;
}

/** Parses with `parse`; on BadArgs prints `<command>: <problem> (usage: <usage>)` and exits 2. */
export function argsOrExit<T>(command: string, usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof BadArgs)) throw e;
    process.stderr.write(`${command}: ${e.message} (usage: ${usage})\n`);
    process.exit(BAD_ARGS_EXIT);
  }
}
