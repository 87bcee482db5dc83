/**
 * Test helper run as a separate process: `node -r ./scripts/register.js dispatch-child.ts
 * <redisUrl> <prefix> <mode> <lockDurationMs>`. Prints one JSON line per event on stdout.
 *  - mode "drain": after a line on stdin (so racing processes start together), dispatch and
 *    complete until nothing is ready, printing each completionId;
 *  - mode "hold": take one job, print it, keep it (locks renewed) until killed.
 */
import { createRedis, RedisKeys } from "@lite/redis";
import { FairScheduler } from "../fair-scheduler";

async function main(): Promise<void> {
  const [redisUrl, prefix, mode, lockMs] = process.argv.slice(2);
  const s = new FairScheduler({
    redis: createRedis({ url: redisUrl }),
    bullConnection: createRedis({ url: redisUrl, forBullmq: true }),
    keys: new RedisKeys(prefix),
    lockDurationMs: Number(lockMs),
    stalledIntervalMs: 100,
  });
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ ready: true });
  if (mode === "hold") {
    for (;;) {
      const d = await s.next(`child-${process.pid}`);
      if (d) {
        out({ held: d.completionId });
        await new Promise(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  await new Promise((r) => process.stdin.once("data", r));
  const loops = Array.from({ length: 4 }, async () => {
    for (;;) {
      const d = await s.next(`child-${process.pid}`);
      if (!d) return;
      out({ got: d.completionId });
      await s.charge(d.tenantId, 5, 1);
      await d.complete({});
    }
  });
  await Promise.all(loops);
  out({ done: true });
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
