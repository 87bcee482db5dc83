/**
 * `npm run demo` ends by printing each tenant's invoice (issue 11 item 7): scripts/demo-invoices.ts
 * against an in-process API, each invoice read with the tenant's own key — its lines (meter,
 * dimension, quantity, unit price, amount) and total; another tenant's usage never shows in
 * it, and a key naming another tenant's invoice gets nothing (the demo says unavailable).
 */
import { createPriceBook } from "@lite/billing";
import { recordCompletionUsage } from "@lite/telemetry";
import { printInvoices } from "../../scripts/demo-invoices";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

it("prints each tenant's own invoice lines and total", async () => {
  const period = new Date().toISOString().slice(0, 7);
  const a = await stack.tenant({ name: "demo-light" });
  const b = await stack.tenant({ name: "demo-heavy" });
  await createPriceBook(stack.env.db, {
    currency: "USD",
    effectiveFrom: new Date(`${period}-01T00:00:00Z`),
    prices: [
      { meter: "OUTPUT_TOKENS", dimension: null, unitPrice: "0.002", unit: "1 token" },
      { meter: "KV_BYTE_SECONDS", dimension: null, unitPrice: "0.000001", unit: "1 byte-second" },
    ],
  });
  const usage = (tenantId: string, completionId: string, outputTokens: number, kvByteSeconds: number) =>
    recordCompletionUsage(stack.env.db, {
      tenantId,
      completionId,
      inputTokens: 3,
      outputTokens,
      expertCallsByTier: {},
      kvByteSeconds,
      mode: "FAST",
      occurredAt: new Date(),
    });
  await usage(a.tenantId, "cmp_demoinvoice0000000000001", 100, 2_000_000);
  await usage(b.tenantId, "cmp_demoinvoice0000000000002", 777, 5_000_000);

  const printed: string[] = [];
  const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void printed.push(args.join(" ")));
  try {
    await printInvoices(
      stack.api.url,
      [
        { id: a.tenantId, name: "demo-light", key: a.secret },
        { id: b.tenantId, name: "demo-heavy", key: b.secret },
        // a's key naming b's invoice: refused like a missing one
        { id: b.tenantId, name: "b-through-a", key: a.secret },
      ],
      period,
    );
  } finally {
    log.mockRestore();
  }
  const out = printed.join("\n");
  const section = (name: string) => {
    const from = out.indexOf(`  ${name} — ${period}`);
    expect(from).toBeGreaterThanOrEqual(0);
    const next = out.indexOf(" — ", from + name.length + 6);
    return out.slice(from, next < 0 ? undefined : next);
  };
  const light = section("demo-light");
  expect(light).toMatch(/OUTPUT_TOKENS\s+100\s+0\.002\s+0\.20/);
  expect(light).toMatch(/KV_BYTE_SECONDS\s+2000000\s+0\.000001\s+2\.00/);
  expect(light).toMatch(/total\s+2\.20/);
  expect(light).not.toContain("777");
  const heavy = section("demo-heavy");
  expect(heavy).toMatch(/OUTPUT_TOKENS\s+777\s+0\.002\s+1\.55/);
  expect(heavy).toMatch(/total\s+6\.55/);
  expect(out).toMatch(/b-through-a: invoice unavailable/);
  expect(out).not.toContain("every amount is 0");
});
