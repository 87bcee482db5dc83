import { startTcpProxy, hostPort } from "@lite/testing";
import { createDb, disconnectDb } from "@lite/db";

/**
 * A connection that dies inside an interactive transaction (PostgreSQL cut away mid-way, then
 * reachable again): `$disconnect()` alone never settles (pg's Client.end on the dead
 * connection waits for an event already emitted); `disconnectDb` gives up at its bound, so a
 * process that saw an outage still stops. Seen as a 60 s hang in the API's shutdown in CI.
 */
describe("disconnectDb", () => {
  async function poolWithDeadTransaction() {
    const proxy = await startTcpProxy(hostPort(process.env.DATABASE_URL!, 5432));
    const db = createDb({ url: proxy.url(process.env.DATABASE_URL!) });
    // cut once the transaction is surely open (a fixed delay raced it on a loaded CI machine)
    let opened!: () => void;
    const inside = new Promise<void>((r) => (opened = r));
    const tx = db.$transaction(
      async (t) => {
        await t.$queryRaw`SELECT 1`;
        opened();
        await new Promise((r) => setTimeout(r, 300));
        await t.$queryRaw`SELECT 2`;
      },
      { maxWait: 20000, timeout: 20000 },
    );
    await inside;
    proxy.cut();
    await expect(tx).rejects.toThrow();
    proxy.restore();
    return { db, proxy };
  }

  it("gives up at its bound after a connection died in a transaction", async () => {
    const { db, proxy } = await poolWithDeadTransaction();
    const started = Date.now();
    expect(await disconnectDb(db, 500)).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
    await proxy.close();
  });

  it("closes a healthy pool", async () => {
    const db = createDb({ url: process.env.DATABASE_URL! });
    await db.$queryRaw`SELECT 1`;
    expect(await disconnectDb(db, 5000)).toBe(true);
  });
});
