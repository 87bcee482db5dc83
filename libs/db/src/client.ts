import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "@prisma/client";

export { Prisma, PrismaClient };
export type Tx = Prisma.TransactionClient;
export type Db = PrismaClient;

export interface DbOptions {
  /** PostgreSQL connection string */
  url: string;
  /** pool size per process (default 10) */
  poolSize?: number;
  /**
   * connections the pool keeps open once opened (default 0: an idle connection closes after
   * 10 s, and the next burst of queries opens it again); at most poolSize
   */
  keepOpen?: number;
}

/** The one way to build a Prisma client: over adapter-pg (Prisma 6 "client" engine, no native binary). */
export function createDb(options: DbOptions): PrismaClient {
  const max = options.poolSize ?? 10;
  const min = Math.min(options.keepOpen ?? 0, max);
  const adapter = new PrismaPg({ connectionString: options.url, max, min });
  return new PrismaClient({ adapter });
}

/**
 * Opens `count` connections of the pool now (each holds one for a moment, so none is
 * reused), instead of when a burst of queries first needs them: a new PostgreSQL connection
 * is a SCRAM exchange on both sides and a backend fork, and a dozen at once on a busy host
 * stalled the API for ~100 ms. With `keepOpen` ≥ count they stay open.
 */
export async function openConnections(db: PrismaClient, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => db.$queryRaw`SELECT 1 AS one FROM pg_sleep(0.05)`));
}

/**
 * Closes the client's connection pool, waiting at most `timeoutMs`; resolves false when it
 * gave up. A shutdown must not hang on a database that went away: a connection that died
 * inside an interactive transaction goes back to the pool as if healthy (the adapter's
 * commit/rollback release it without the error), and pg's `Client.end()` on it waits for an
 * 'end' event its already-closed socket emitted before, so `$disconnect()` never settles.
 * Such a connection's socket is closed already: giving up leaves nothing open.
 */
export async function disconnectDb(db: PrismaClient, timeoutMs = 5000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      db.$disconnect().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
        timer.unref();
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** True when PostgreSQL answers (used by /readyz). */
export async function pingDb(db: PrismaClient, timeoutMs = 1000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.$queryRaw`SELECT 1`,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}
