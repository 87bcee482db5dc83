/**
 * The billing commands as an operator runs them (`bash scripts/run.sh billing:…`, what
 * `npm run billing:…` calls), against a real stack:
 * - billing:reconcile passes after completions served across a worker SIGKILL, then fails
 *   naming every mismatch: a forged duplicate usage event, OUTPUT_TOKENS billed ≠ the row's
 *   tokens (stream expired) and ≠ the stream's;
 * - billing:export writes a closed month's invoices as CSV (issuing it, audited) whose
 *   lines sum to the totals finance reads over GraphQL;
 * - bad arguments or configuration: one line, exit 2, nothing written.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  createPriceBook,
  INVOICE_CSV_COLUMNS,
  Money,
  nextPeriod,
  parseCsv,
  periodOf,
  periodStart,
  previousPeriod,
} from "@lite/billing";
import { newId } from "@lite/core";
import { CREATE_COMPLETION, createKey, gql, untilCompletionEnds, waitFor, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";
import { recordUsage } from "./usage-fixture";

const ROOT = path.resolve(__dirname, "..", "..");
const CURRENT = periodOf(new Date());
const CLOSED = previousPeriod(CURRENT);

let stack: TestStack;
let tmp: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: "billing:export" | "billing:reconcile",
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<Run> {
  const base: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: stack.env.databaseUrl,
    REDIS_URL: stack.env.redisUrl,
    REDIS_PREFIX: stack.env.redisPrefix,
    ...env,
  };
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["scripts/run.sh", command, ...args], { cwd: ROOT, env: base as NodeJS.ProcessEnv });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "billing-cmd-"));
  stack = await startE2eStack({ workers: 0, workerEnv: { WORKER_STEP_DELAY_MS: "15" } });
}, 90000);

afterAll(async () => {
  await stack?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("billing:reconcile", () => {
  let t: StackTenant;
  const ids: string[] = [];

  it("passes after completions served across a worker SIGKILL", async () => {
    t = await stack.tenant();
    for (const seed of ["1", "2", "3"]) {
      const r = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
        input: { prompt: `bill me ${seed}`, maxTokens: 48, mode: "FAST", seed, temperature: 0.7 },
      });
      ids.push(r.createCompletion.id);
    }
    const a = await stack.spawnWorker({ id: "worker-a" });
    const key = stack.env.keys.completionStream(t.tenantId, ids[0]);
    await waitFor("tokens streamed", async () => ((await stack.env.redis.xlen(key)) >= 5 ? true : undefined), {
      timeoutMs: 30000,
      everyMs: 10,
    });
    a.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");
    await stack.spawnWorker({ id: "worker-b" });
    for (const id of ids) expect((await untilCompletionEnds(t.http, id, 60000)).status).toBe("COMPLETED");
    await waitFor("usage of every completion", async () =>
      (await stack.env.db.usageEvent.count({ where: { completionId: { in: ids }, meter: "OUTPUT_TOKENS" } })) === 3
        ? true
        : undefined,
    );

    const r = await run("billing:reconcile", ["--period", CURRENT]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain(`reconcile ${CURRENT}: 3 completions and`);
    expect(r.stdout.trim().split("\n").pop()).toBe(`reconcile ${CURRENT}: OK`);
  }, 150000);

  it("fails naming every mismatch: a forged duplicate event, billed ≠ row tokens, billed ≠ stream tokens", async () => {
    const [c1, c2, c3] = ids;
    const out = async (id: string) =>
      (await stack.env.db.usageEvent.findFirstOrThrow({ where: { completionId: id, meter: "OUTPUT_TOKENS" } }))
        .quantity;
    const row = async (id: string) => (await stack.env.db.completion.findUniqueOrThrow({ where: { id } })).outputTokens;
    // 1: a second OUTPUT_TOKENS event under another key
    const q1 = await out(c1);
    await stack.env.db.usageEvent.create({
      data: {
        id: newId("usage"),
        idempotencyKey: `${c1}:OUTPUT_TOKENS:forged`,
        tenantId: t.tenantId,
        meter: "OUTPUT_TOKENS",
        quantity: q1,
        completionId: c1,
        occurredAt: new Date(),
      },
    });
    // 2: one token too many billed, its stream expired (the row is the evidence)
    await stack.env.db.usageEvent.updateMany({
      where: { completionId: c2, meter: "OUTPUT_TOKENS" },
      data: { quantity: BigInt((await row(c2)) + 1) },
    });
    await stack.env.redis.del(stack.env.keys.completionStream(t.tenantId, c2));
    // 3: one token too few billed, its stream still held
    await stack.env.db.usageEvent.updateMany({
      where: { completionId: c3, meter: "OUTPUT_TOKENS" },
      data: { quantity: BigInt((await row(c3)) - 1) },
    });

    const r = await run("billing:reconcile", ["--period", CURRENT]);
    expect(r.code).toBe(1);
    const mismatches = r.stdout.split("\n").filter((l) => l.startsWith("MISMATCH"));
    const n1 = await row(c1);
    expect(mismatches.sort()).toEqual(
      [
        `MISMATCH DUPLICATE_EVENT completion ${c1} (tenant ${t.tenantId}): OUTPUT_TOKENS has 2 usage events (keys: ${c1}:OUTPUT_TOKENS: ${c1}:OUTPUT_TOKENS:forged)`,
        `MISMATCH OUTPUT_TOKENS completion ${c1} (tenant ${t.tenantId}): OUTPUT_TOKENS billed ${2 * n1}, stream holds ${n1}`,
        `MISMATCH OUTPUT_TOKENS completion ${c2} (tenant ${t.tenantId}): OUTPUT_TOKENS billed ${(await row(c2)) + 1}, row has ${await row(c2)}`,
        `MISMATCH OUTPUT_TOKENS completion ${c3} (tenant ${t.tenantId}): OUTPUT_TOKENS billed ${(await row(c3)) - 1}, stream holds ${await row(c3)}`,
      ].sort(),
    );
    expect(r.stdout.trim().split("\n").pop()).toBe(`reconcile ${CURRENT}: FAILED, 4 mismatch(es)`);
  }, 60000);
});

describe("billing:export", () => {
  let finance: string;
  beforeAll(async () => {
    finance = (await createKey(stack.env.db, "FINANCE")).secret;
    await createPriceBook(stack.env.db, {
      currency: "USD",
      effectiveFrom: periodStart(CLOSED),
      prices: [
        { meter: "OUTPUT_TOKENS", dimension: null, unitPrice: "0.0000021", unit: "1 token" },
        { meter: "EXPERT_CALLS", dimension: null, unitPrice: "0.000000015", unit: "1 call" },
      ],
    });
    const x = await stack.tenant({ name: "x, with a comma" });
    const y = await stack.tenant({ name: "y" });
    const day = (d: number) => new Date(periodStart(CLOSED).getTime() + d * 86400_000);
    await recordUsage(stack.env.db, [
      { tenantId: x.tenantId, meter: "OUTPUT_TOKENS", quantity: 1_234_567, occurredAt: day(1) },
      { tenantId: x.tenantId, meter: "EXPERT_CALLS", dimension: "tiny.t0", quantity: 98_765_432, occurredAt: day(2) },
      { tenantId: x.tenantId, meter: "EXPERT_CALLS", dimension: "tiny.t1", quantity: 5_000_001, occurredAt: day(2) },
      { tenantId: y.tenantId, meter: "OUTPUT_TOKENS", quantity: 999, occurredAt: day(20) },
    ]);
  });

  it("writes the closed month's invoices (issuing it) whose lines sum to the totals finance reads", async () => {
    const file = path.join(tmp, "invoices.csv");
    const r = await run("billing:export", ["--period", CLOSED, "--out", file]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "" });
    expect(r.stderr).toMatch(new RegExp(`^billing:export ${CLOSED}: 2 invoice\\(s\\), ISSUED, USD \\d+\\.\\d\\d → `));
    const rows = parseCsv(fs.readFileSync(file, "utf8"));
    expect(rows[0]).toEqual([...INVOICE_CSV_COLUMNS]);
    const records = rows.slice(1).map((r) => Object.fromEntries(INVOICE_CSV_COLUMNS.map((c, i) => [c, r[i]])));
    const sums = new Map<string, InstanceType<typeof Money>>();
    for (const rec of records) {
      expect(rec.status).toBe("ISSUED");
      expect(new Money(rec.quantity).times(rec.unit_price).toDecimalPlaces(2, Money.ROUND_HALF_EVEN).toFixed(2)).toBe(
        rec.amount,
      );
      sums.set(rec.tenant_id, (sums.get(rec.tenant_id) ?? new Money(0)).plus(rec.amount));
    }
    const gqlInvoices = await gql<{
      invoices: Array<{ tenantId: string; tenantName: string; total: string; status: string }>;
    }>(stack.api.url, finance, `query($p: String!) { invoices(period: $p) { tenantId tenantName total status } }`, {
      p: CLOSED,
    });
    const list = gqlInvoices.data!.invoices;
    expect(list).toHaveLength(2);
    for (const inv of list) {
      expect(inv.status).toBe("ISSUED");
      expect(sums.get(inv.tenantId)!.toFixed(2)).toBe(inv.total);
      for (const rec of records.filter((x) => x.tenant_id === inv.tenantId)) {
        expect([rec.invoice_total, rec.tenant_name]).toEqual([inv.total, inv.tenantName]);
      }
    }
    // stdout carries the same CSV; the issue was audited once, under the command's actor
    const again = await run("billing:export", ["--period", CLOSED]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(fs.readFileSync(file, "utf8"));
    await stack.api.services.auditWriter.flush();
    const audits = await stack.env.db.auditLog.findMany({ where: { action: "invoices.issue" } });
    expect(audits.map((a) => [a.actor, a.resource])).toEqual([["cli:billing-export", `period:${CLOSED}`]]);
  }, 60000);

  it("accepts the earliest period and the month in progress (drafts); a month without usage is the header alone", async () => {
    const earliest = await run("billing:export", ["--period=2020-01"]);
    expect({ code: earliest.code, stdout: earliest.stdout }).toEqual({
      code: 0,
      stdout: `${INVOICE_CSV_COLUMNS.join(",")}\r\n`,
    });
    const current = await run("billing:export", ["--period", CURRENT]);
    expect(current.code).toBe(0);
    const statuses = parseCsv(current.stdout)
      .slice(1)
      .map((r) => r[INVOICE_CSV_COLUMNS.indexOf("status")]);
    expect(new Set(statuses)).toEqual(new Set(["DRAFT"]));
  }, 60000);
});

describe("bad arguments and configuration: one line, exit 2, nothing written", () => {
  const usage = (cmd: string) => (cmd === "billing:export" ? "--period YYYY-MM [--out FILE]" : "--period YYYY-MM)");
  it.each([
    ["billing:export", [], "--period YYYY-MM is required"],
    ["billing:export", ["--period", "2026-13"], "--period must be YYYY-MM"],
    ["billing:export", ["--period=2019-12"], "--period must be 2020-01 or later"],
    [
      "billing:export",
      ["--period", nextPeriod(CURRENT)],
      `--period must not be after the month in progress (${CURRENT})`,
    ],
    ["billing:export", ["--period"], "--period needs a value"],
    ["billing:export", ["--period", "2024-01", "--period", "2024-02"], "--period given twice"],
    ["billing:export", ["--period", CLOSED, "--format", "json"], 'unknown argument "--format"'],
    ["billing:export", ["--period", CLOSED, "--out", "/nonexistent-dir/x.csv"], "--out: no directory /nonexistent-dir"],
    ["billing:reconcile", ["2026-11"], 'unknown argument "2026-11"'],
    ["billing:reconcile", ["--period", "2026-1"], "--period must be YYYY-MM"],
    ["billing:reconcile", ["--period", CLOSED, "--out", "x.csv"], 'unknown argument "--out"'],
  ] as const)(
    "%s %j",
    async (cmd, args, problem) => {
      const r = await run(cmd, [...args]);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: "" });
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(r.stderr).toContain(`${cmd}: ${problem} (usage: npm run ${cmd} -- `);
      expect(r.stderr).toContain(usage(cmd));
    },
    30000,
  );

  it("a missing DATABASE_URL names the variable, exit 2", async () => {
    const r = await run("billing:reconcile", ["--period", CLOSED], { DATABASE_URL: undefined });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("billing:reconcile: config error: DATABASE_URL is required");
  });
});
