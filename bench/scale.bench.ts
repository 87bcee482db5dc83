/**
 * scale: dispatch throughput and per-dispatch cost of the fair scheduler with 10, 1,000 and
 * 10,000 tenants holding queued work (RUNTIME.md "Benchmarks"); the target is that 10,000
 * tenants keep at least half the throughput of 10.
 *
 * Method, per tenant count N (fresh key prefix each):
 *  1. fill: every tenant gets ceil(D / N) + 1 jobs (weights 1..4), so all N stay backlogged
 *     for the whole measured window;
 *  2. warm-up: WARMUP dispatch cycles, not measured;
 *  3. measure D dispatch cycles = next() → charge(20 tokens) → complete(), run by C
 *     concurrent loops (C = 1: per-dispatch latency; C = 8: throughput, like a worker filling
 *     its batch slots), in ROUNDS rounds that alternate between the setups (and the
 *     baseline), so load from other processes hits every setup alike; a cell reports the
 *     median round. Redis commands (including those inside scripts) from INFO commandstats.
 * Baseline in the same run: plain BullMQ on ONE queue (getNextJob + moveToCompleted, same
 * loops), i.e. the ceiling without any fairness.
 * Redis: REDIS_URL, or a throw-away local redis-server (as `npm test` does).
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { createRedis, deleteByPrefix, RedisKeys, type Redis } from "@lite/redis";
import { FairScheduler, type CompletionJob } from "@lite/scheduler";
import { bringUpServices } from "../scripts/services";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";

const TENANT_COUNTS = [10, 1000, 10000];
const DISPATCHES = 3000;
/** measured rounds per cell, interleaved across setups; the cell reports the median round */
const ROUNDS = 5;
const WARMUP = 300;
const CONCURRENCY = [1, 8];
const FILL_PARALLELISM = 64;

interface Cell {
  tenants: number;
  concurrency: number;
  dispatches: number;
  dispatchesPerSecond: number;
  /** wall time per dispatch cycle (next + charge + complete) ÷ concurrency, µs */
  usPerDispatch: number;
  nextP50Us: number;
  nextP99Us: number;
  redisCommandsPerDispatch: number;
}

function job(tenantId: string, i: number): CompletionJob {
  return {
    version: 1,
    completionId: `cmp_${tenantId}_${i}`,
    tenantId,
    modelName: "default",
    prompt: "p",
    seed: String(i),
    tierIds: ["t0"],
    mode: "FAST",
    temperature: 0,
    maxTokens: 20,
    costWeight: 1,
    degraded: false,
    enqueuedAtMs: 0,
  };
}

async function commandCount(redis: Redis): Promise<number> {
  const info = await redis.info("commandstats");
  let total = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) total += Number(m[1]);
  return total;
}

async function inParallel(count: number, parallelism: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallelism, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

interface Setup {
  tenants: number;
  prefix: string;
  s: FairScheduler;
  redis: Redis;
  bull: Redis;
}

async function fill(redisUrl: string, tenants: number, log: (m: string) => void): Promise<Setup> {
  const prefix = `bench-scale-${randomBytes(4).toString("hex")}`;
  const keys = new RedisKeys(prefix);
  const redis = createRedis({ url: redisUrl });
  const bull = createRedis({ url: redisUrl, forBullmq: true });
  const s = new FairScheduler({ redis, bullConnection: bull, keys, lockDurationMs: 60000, stalledIntervalMs: 60000 });
  const perTenant = Math.ceil(((WARMUP + DISPATCHES) * CONCURRENCY.length) / tenants) + 1;
  const started = Date.now();
  await inParallel(tenants * perTenant, FILL_PARALLELISM, async (k) => {
    const t = `ten_${k % tenants}`;
    await s.enqueue(job(t, Math.floor(k / tenants)), 1 + ((k % tenants) % 4));
  });
  log(`scale: ${tenants} tenants × ${perTenant} jobs queued in ${Date.now() - started} ms`);
  return { tenants, prefix, s, redis, bull };
}

interface Sample {
  elapsedMs: number;
  dispatches: number;
  nextUs: number[];
  commands: number;
}

async function sample(
  admin: Redis,
  dispatches: number,
  concurrency: number,
  cycle: (lat?: number[]) => Promise<void>,
): Promise<Sample> {
  const nextUs: number[] = [];
  const c0 = await commandCount(admin);
  const t0 = performance.now();
  await inParallel(dispatches, concurrency, () => cycle(nextUs));
  const elapsedMs = performance.now() - t0;
  return { elapsedMs, dispatches, nextUs, commands: (await commandCount(admin)) - c0 - 1 };
}

/** Rounds alternate between the setups, so load from other processes on the machine hits all alike. */
function toCell(tenants: number, concurrency: number, samples: Sample[]): Cell {
  const perRound = samples.map((x) => (x.dispatches / x.elapsedMs) * 1000).sort((a, b) => a - b);
  const median = perRound[Math.floor(perRound.length / 2)];
  const lat = samples.flatMap((x) => x.nextUs).sort((a, b) => a - b);
  const dispatches = samples.reduce((a, x) => a + x.dispatches, 0);
  return {
    tenants,
    concurrency,
    dispatches,
    dispatchesPerSecond: Math.round(median),
    usPerDispatch: Math.round(1e6 / median),
    nextP50Us: Math.round(pct(lat, 50)),
    nextP99Us: Math.round(pct(lat, 99)),
    redisCommandsPerDispatch: Number((samples.reduce((a, x) => a + x.commands, 0) / dispatches).toFixed(2)),
  };
}

async function measureAll(
  redisUrl: string,
  admin: Redis,
  log: (m: string) => void,
): Promise<{ baseline: Cell[]; cells: Cell[] }> {
  const setups: Setup[] = [];
  const fifo = await fifoSetup(redisUrl);
  try {
    for (const n of TENANT_COUNTS) setups.push(await fill(redisUrl, n, log));
    const schedCycle = (st: Setup) => async (lat?: number[]) => {
      const t0 = performance.now();
      const d = await st.s.next("bench");
      if (lat) lat.push((performance.now() - t0) * 1000);
      if (!d) throw new Error("ran out of queued work");
      await st.s.charge(d.tenantId, 20, d.job.costWeight);
      await d.complete({});
    };
    const samples = new Map<string, Sample[]>();
    const add = (k: string, x: Sample) => samples.set(k, [...(samples.get(k) ?? []), x]);
    for (const concurrency of CONCURRENCY) {
      await inParallel(WARMUP, concurrency, () => fifo.cycle());
      for (const st of setups) await inParallel(WARMUP, concurrency, () => schedCycle(st)());
      for (let r = 0; r < ROUNDS; r++) {
        add(`1/${concurrency}`, await sample(admin, DISPATCHES / ROUNDS, concurrency, fifo.cycle));
        for (const st of setups)
          add(`${st.tenants}/${concurrency}`, await sample(admin, DISPATCHES / ROUNDS, concurrency, schedCycle(st)));
      }
      log(`scale: concurrency ${concurrency} measured`);
    }
    return {
      baseline: CONCURRENCY.map((c) => toCell(1, c, samples.get(`1/${c}`)!)),
      cells: setups.flatMap((st) => CONCURRENCY.map((c) => toCell(st.tenants, c, samples.get(`${st.tenants}/${c}`)!))),
    };
  } finally {
    await fifo.close();
    for (const st of setups) {
      await st.s.close();
      await deleteByPrefix(admin, st.prefix);
      st.redis.disconnect();
      st.bull.disconnect();
    }
  }
}

/** Baseline: one plain BullMQ queue, no fairness, same loop shape. */
async function fifoSetup(
  redisUrl: string,
): Promise<{ cycle: (lat?: number[]) => Promise<void>; close: () => Promise<void> }> {
  const prefix = `bench-scale-fifo-${randomBytes(4).toString("hex")}`;
  const bull = createRedis({ url: redisUrl, forBullmq: true });
  const queue = new Queue("fifo", { connection: bull, prefix });
  const worker = new Worker("fifo", null, { connection: bull, prefix, autorun: false });
  const total = (WARMUP + DISPATCHES) * CONCURRENCY.length + 10;
  for (let i = 0; i < total; i += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, total - i) }, (_, k) => ({
        name: "c",
        data: job("ten_fifo", i + k),
        opts: { removeOnComplete: true },
      })),
    );
  }
  let token = 0;
  return {
    cycle: async (lat?: number[]) => {
      const tk = `t${token++}`;
      const t0 = performance.now();
      const j = await worker.getNextJob(tk, { block: false });
      if (lat) lat.push((performance.now() - t0) * 1000);
      if (!j) throw new Error("fifo ran out");
      await j.moveToCompleted({}, tk, false);
    },
    close: async () => {
      await worker.close();
      await queue.close();
      await deleteByPrefix(bull, prefix);
      bull.disconnect();
    },
  };
}

export const bench: Benchmark = {
  name: "scale",
  description:
    "fair-scheduler dispatch throughput and per-dispatch cost with 10, 1,000 and 10,000 tenants holding queued work",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const dataDir = path.join(ctx.rootDir, "var", `bench-scale-${process.pid}`);
    fs.mkdirSync(dataDir, { recursive: true });
    // Only Redis is needed: a placeholder DATABASE_URL keeps bringUpServices from starting PostgreSQL.
    const services = await bringUpServices(
      { DATABASE_URL: "postgresql://unused@127.0.0.1:1/unused", REDIS_URL: process.env.REDIS_URL },
      { dataDir, persistent: false, log: ctx.log },
    );
    const admin = createRedis({ url: services.redisUrl });
    try {
      const { baseline, cells } = await measureAll(services.redisUrl, admin, ctx.log);
      const at = (n: number, c: number) => cells.find((x) => x.tenants === n && x.concurrency === c)!;
      const ratios = CONCURRENCY.map((c) => ({
        concurrency: c,
        throughput10kOver10: Number((at(10000, c).dispatchesPerSecond / at(10, c).dispatchesPerSecond).toFixed(3)),
        throughput1kOver10: Number((at(1000, c).dispatchesPerSecond / at(10, c).dispatchesPerSecond).toFixed(3)),
        fairOverSingleQueue: Number(
          (at(10, c).dispatchesPerSecond / baseline.find((b) => b.concurrency === c)!.dispatchesPerSecond).toFixed(3),
        ),
      }));
      const pass = ratios.every((r) => r.throughput10kOver10 >= 0.5);
      const row = (x: Cell, label: string) =>
        `| ${label} | ${x.concurrency} | ${x.dispatchesPerSecond} | ${x.usPerDispatch} | ${x.nextP50Us} | ${x.nextP99Us} | ${x.redisCommandsPerDispatch} |`;
      const summary = [
        `Dispatch cycle = \`next()\` → \`charge()\` → \`complete()\` against a local Redis on the same ${ctx.cores} cores; ${DISPATCHES} measured cycles per cell after ${WARMUP} warm-up, in ${ROUNDS} rounds interleaved across setups (median round reported); every tenant keeps queued work throughout. Commands per dispatch include those run inside Lua scripts.`,
        "",
        "| tenants with queued work | concurrent loops | dispatches/s | µs per dispatch | next() p50 µs | next() p99 µs | Redis commands per dispatch |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        ...baseline.map((b) => row(b, "1 plain BullMQ queue (baseline, no fairness)")),
        ...cells.map((c) => row(c, c.tenants.toLocaleString("en-US"))),
        "",
        ...ratios.map(
          (r) =>
            `- concurrency ${r.concurrency}: 10,000 ÷ 10 tenants throughput **${r.throughput10kOver10}** (1,000 ÷ 10: ${r.throughput1kOver10}); fair scheduler at 10 tenants ÷ plain single queue: ${r.fairOverSingleQueue}`,
        ),
        `- target (10,000 tenants ≥ 0.5 × 10 tenants): **${pass ? "met" : "NOT met"}**`,
      ].join("\n");
      return { summary, baseline, cells, ratios, pass };
    } finally {
      admin.disconnect();
      await services.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
};
