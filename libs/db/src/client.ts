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
}

/** The one way to build a Prisma client: over adapter-pg (Prisma 6 "client" engine, no native binary). */
export function createDb(options: DbOptions): PrismaClient {
  const adapter = new PrismaPg({ connectionString: options.url, max: options.poolSize ?? 10 });
  return new PrismaClient({ adapter });
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
