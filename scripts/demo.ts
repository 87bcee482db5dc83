/**
 * `npm run demo`: against a running `npm start`, creates three tenants of weights 1, 2
 * and 4, streams completions for each concurrently over graphql-ws, and prints per-tenant
 * throughput and latency (TTFT p50/p99, tokens/s) and each tenant's usage, and ends by
 * printing each tenant's invoice of the month (its lines and total, read with its own key).
 *
 *   --url URL          GraphQL endpoint (default http://127.0.0.1:4000/graphql)
 *   --requests N       completions per tenant (default 24)
 *   --max-tokens N     tokens per completion (default 64)
 *   --mode MODE        FAST | BALANCED | DEEP (default FAST)
 * The admin key comes from ADMIN_API_KEY, else var/admin.key.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { collectTokens, CREATE_COMPLETION, GqlHttp, wsClient } from "@lite/testing";
import { printInvoices } from "./demo-invoices";

interface TenantRun {
  name: string;
  weight: number;
  id: string;
  key: string;
  ttftMs: number[];
  tokens: number;
  firstAt: number;
  lastAt: number;
  errors: string[];
  /** arrival time of every token event */
  arrivals: number[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function adminKey(): string {
  if (process.env.ADMIN_API_KEY) return process.env.ADMIN_API_KEY;
  const file = path.resolve(__dirname, "..", "var", "admin.key");
  if (!fs.existsSync(file)) {
    process.stderr.write("demo: set ADMIN_API_KEY or run `npm start` first (it writes var/admin.key)\n");
    process.exit(2);
  }
  return fs.readFileSync(file, "utf8").trim();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:4000/graphql" },
      requests: { type: "string", default: "24" },
      "max-tokens": { type: "string", default: "64" },
      mode: { type: "string", default: "FAST" },
    },
  });
  const url = values.url!;
  const requests = Number(values.requests);
  const maxTokens = Number(values["max-tokens"]);
  const admin = new GqlHttp(url, adminKey());
  try {
    await admin.ok(`{ me { role } }`);
  } catch (e) {
    process.stderr.write(
      `demo: cannot reach the API at ${url} as admin (${(e as Error).message}); is \`npm start\` running?\n`,
    );
    process.exit(2);
  }

  const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const runs: TenantRun[] = [];
  for (const weight of [1, 2, 4]) {
    const name = `demo-${stamp}-w${weight}`;
    const d = await admin.ok<{ createTenant: { tenant: { id: string }; apiKey: { secret: string } } }>(
      `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } apiKey { secret } } }`,
      {
        input: {
          name,
          weight,
          quota: {
            maxConcurrentRequests: 1000,
            requestsPerMinute: 10000,
            maxOutstandingTokens: 1000000,
            tokensPerMinute: 10000000,
          },
        },
      },
    );
    runs.push({
      name,
      weight,
      id: d.createTenant.tenant.id,
      key: d.createTenant.apiKey.secret,
      ttftMs: [],
      tokens: 0,
      firstAt: Infinity,
      lastAt: 0,
      errors: [],
      arrivals: [],
    });
  }
  console.log(`created tenants ${runs.map((r) => `${r.name} (weight ${r.weight})`).join(", ")}`);
  console.log(`streaming ${requests} completions × ${maxTokens} tokens per tenant, mode ${values.mode}…`);

  const from = new Date(Date.now() - 60_000);
  const started = performance.now();
  await Promise.all(
    runs.map(async (run) => {
      const http = new GqlHttp(url, run.key);
      const ws = wsClient(url, run.key);
      try {
        await Promise.all(
          Array.from({ length: requests }, async (_, i) => {
            const t0 = performance.now();
            const r = await http.request<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
              input: {
                prompt: `Tenant ${run.weight}, request ${i}: tell me a story.`,
                maxTokens,
                mode: values.mode,
                seed: String(i),
              },
            });
            if (!r.data?.createCompletion) {
              run.errors.push(`${r.status} ${r.errors?.[0]?.message}`);
              return;
            }
            let first = true;
            await collectTokens(ws, r.data.createCompletion.id, 0, (e, at) => {
              run.arrivals.push(at);
              if (e.done) return;
              if (first) {
                first = false;
                run.ttftMs.push(at - t0);
              }
              run.tokens++;
              run.firstAt = Math.min(run.firstAt, at);
              run.lastAt = Math.max(run.lastAt, at);
            }).catch((e: Error) => run.errors.push(e.message));
          }),
        );
      } finally {
        await ws.dispose();
      }
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  const to = new Date(Date.now() + 60_000);

  console.log(`\nall done in ${wallS.toFixed(1)} s\n`);
  console.log("tenant                         weight  tokens  tokens/s  share  TTFT p50 ms  TTFT p99 ms  errors");
  const total = runs.reduce((s, r) => s + r.tokens, 0);
  for (const r of runs) {
    const span = Math.max(1e-3, (r.lastAt - r.firstAt) / 1000);
    console.log(
      `${r.name.padEnd(30)} ${String(r.weight).padStart(6)} ${String(r.tokens).padStart(7)} ${(r.tokens / span).toFixed(0).padStart(9)} ${((100 * r.tokens) / Math.max(1, total)).toFixed(0).padStart(5)}% ${percentile(r.ttftMs, 50).toFixed(0).padStart(12)} ${percentile(r.ttftMs, 99).toFixed(0).padStart(12)} ${String(r.errors.length).padStart(7)}`,
    );
  }
  console.log("\n(tokens/s per tenant is over its own streaming span; every tenant asked for the same work.)");
  // While all three tenants are streaming (from the last first token to the first last
  // token), the worker's slots follow the weights: tokens/s there is the fair share.
  const from2 = Math.max(...runs.map((r) => r.firstAt));
  const to2 = Math.min(...runs.map((r) => r.lastAt));
  if (to2 > from2) {
    const span = (to2 - from2) / 1000;
    const inWindow = runs.map((r) => r.arrivals.filter((a) => a >= from2 && a <= to2).length);
    const sum = inWindow.reduce((a, b) => a + b, 0);
    console.log(`\nwhile all three were streaming (${span.toFixed(1)} s):`);
    runs.forEach((r, k) =>
      console.log(
        `  weight ${r.weight}: ${(inWindow[k] / span).toFixed(0)} tokens/s, ${((100 * inWindow[k]) / Math.max(1, sum)).toFixed(0)}% of the tokens (weight share ${((100 * r.weight) / 7).toFixed(0)}%)`,
      ),
    );
  }

  console.log("\nusage (from the usage events the workers wrote):");
  for (const r of runs) {
    const u = await new GqlHttp(url, r.key).request<{
      tenant: { usage: Array<{ meter: string; dimension: string | null; quantity: string }> };
    }>(
      `query($id: ID!, $from: DateTime!, $to: DateTime!) { tenant(id: $id) { usage(from: $from, to: $to) { meter dimension quantity } } }`,
      { id: r.id, from: from.toISOString(), to: to.toISOString() },
    );
    if (!u.data?.tenant) {
      console.log(`  ${r.name}: usage unavailable (${u.errors?.[0]?.message ?? u.status})`);
      continue;
    }
    const lines = u.data.tenant.usage.map((x) => `${x.meter}${x.dimension ? `[${x.dimension}]` : ""}=${x.quantity}`);
    console.log(`  ${r.name}: ${lines.join("  ")}`);
  }
  for (const r of runs) if (r.errors.length) console.log(`errors for ${r.name}: ${r.errors.slice(0, 3).join(" | ")}`);
  // Last: each tenant's invoice of this month (a draft while the month is open).
  await printInvoices(url, runs, new Date().toISOString().slice(0, 7));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
