/**
 * Makes the Prisma 6.19 CLI run its WebAssembly schema engine over adapter-pg, so
 * `migrate deploy` / `migrate diff` work offline (the native engine is downloaded
 * from outside the npm registry). Delete this file when upstream fixes:
 *
 * - prisma/orm#27403: the engine's catalog queries return `name` (OID 19) and
 *   `"char"` (OID 18) columns that adapter-pg cannot map. We relabel them as text
 *   (OID 25) on every result, through pg's `Pool({ Client })` option.
 */
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

const RELABEL = new Set([18, 19]);
const TEXT_OID = 25;

type QueryResultLike = { fields?: Array<{ dataTypeID: number }> };

function relabel(result: unknown): unknown {
  const results = Array.isArray(result) ? result : [result];
  for (const r of results as QueryResultLike[]) {
    for (const f of r?.fields ?? []) if (RELABEL.has(f.dataTypeID)) f.dataTypeID = TEXT_OID;
  }
  return result;
}

class RelabellingClient extends pg.Client {
  // pg-pool calls query(config, values, callback); adapter-pg awaits the promise form.
  override query(...args: unknown[]): never {
    const last = args[args.length - 1];
    if (typeof last === "function") {
      const callback = last as (e: unknown, r: unknown) => void;
      args[args.length - 1] = (e: unknown, r: unknown) => callback(e, e ? r : relabel(r));
    }
    const out = (super.query as (...a: unknown[]) => unknown)(...args);
    if (out && typeof (out as Promise<unknown>).then === "function") {
      return (out as Promise<unknown>).then(relabel) as never;
    }
    return out as never;
  }
}

export function cliAdapter(connectionString: string): PrismaPg {
  const pool = new pg.Pool({ connectionString, Client: RelabellingClient, max: 2 });
  return new PrismaPg(pool);
}
