/**
 * The switches of the telemetry benchmark's baseline, against real processes: an API process
 * and a worker process with METRICS=off (and the worker's BENCHMARK_BASELINE_SKIP_USAGE=true)
 * record nothing of a completion they serve — no per-tenant Prometheus series in either
 * /metrics, nothing published to Redis for Tenant.metrics, no usage event — while a stack
 * with neither variable set (the default) records all three.
 */
import {
  apiProcess,
  collectTokens,
  CREATE_COMPLETION,
  scrapeWorkerMetrics,
  startStack,
  TEST_ADMIN_KEY,
  waitFor,
  wsClient,
  type ApiProcess,
  type Stack,
  type StackTenant,
} from "@lite/testing";
import { E2E_WORKER_ENV } from "../support/stack";

const LIVE = `query($id: ID!) { tenant(id: $id) { metrics(windowSeconds: 300) { requests outputTokens } } }`;

interface Served {
  tenant: StackTenant;
  completionId: string;
  tokens: number;
}

async function serveOne(stack: Stack<ApiProcess>): Promise<Served> {
  const tenant = await stack.tenant();
  const created = await tenant.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
    input: { prompt: "switches", maxTokens: 10, mode: "FAST", seed: "1" },
  });
  const completionId = created.createCompletion.id;
  const ws = wsClient(stack.api.url, tenant.secret);
  try {
    const events = await collectTokens(ws, completionId);
    return { tenant, completionId, tokens: events.filter((e) => !e.done).length };
  } finally {
    await ws.dispose();
  }
}

const workerMetricsUrl = (stack: Stack<ApiProcess>) =>
  `http://127.0.0.1:${/"metricsPort":(\d+)/.exec(stack.workers[0].output())?.[1]}/metrics`;
const apiMetricsUrl = (stack: Stack<ApiProcess>) => `${stack.api.baseUrl}/metrics`;

/** Samples of `metric` naming this tenant. */
function seriesOf(text: string, metric: string, tenantId: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${metric}{`) && l.includes(`tenant="${tenantId}"`));
}

async function usageRows(stack: Stack<ApiProcess>, completionId: string) {
  return stack.env.db.usageEvent.findMany({ where: { completionId }, select: { meter: true, quantity: true } });
}

async function liveKeys(stack: Stack<ApiProcess>, tenantId: string): Promise<string[]> {
  return stack.env.redis.keys(`${stack.env.keys.tenant(tenantId)}:live:*`);
}

describe("METRICS=off and BENCHMARK_BASELINE_SKIP_USAGE=true (the telemetry benchmark's baseline)", () => {
  let stack: Stack<ApiProcess>;
  beforeAll(async () => {
    stack = await startStack({
      api: apiProcess(),
      model: "tiny",
      apiEnv: { METRICS: "off" },
      workers: 1,
      workerEnv: { ...E2E_WORKER_ENV, METRICS: "off", BENCHMARK_BASELINE_SKIP_USAGE: "true" },
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  it("serve a completion and record none of it: no series, no live metrics, no usage event", async () => {
    const { tenant, completionId, tokens } = await serveOne(stack);
    expect(tokens).toBe(10);
    // the worker says so at start
    expect(stack.workers[0].output()).toMatch(/BENCHMARK_BASELINE_SKIP_USAGE=true: this worker records NO usage/);
    // Past two flush intervals of the live metrics (1 s) and the end of the finalisation.
    await waitFor("the completion's row is final", async () => {
      const row = await stack.env.db.completion.findUnique({ where: { id: completionId } });
      return row?.status === "COMPLETED" ? row : undefined;
    });
    await new Promise((r) => setTimeout(r, 2500));

    const worker = await scrapeWorkerMetrics(workerMetricsUrl(stack), TEST_ADMIN_KEY);
    for (const m of ["lite_tokens_generated_total", "lite_ttft_seconds_count", "lite_expert_cache_uses_total"])
      expect(seriesOf(worker, m, tenant.tenantId)).toEqual([]);
    expect(worker).not.toMatch(/^lite_decode_step_seconds_count/m);
    const api = await scrapeWorkerMetrics(apiMetricsUrl(stack), TEST_ADMIN_KEY);
    expect(seriesOf(api, "lite_requests_admitted_total", tenant.tenantId)).toEqual([]);
    expect(api).not.toMatch(/^lite_api_graphql_operations_total\{/m);
    expect(api).toMatch(/^lite_api_process_cpu_seconds_total/m); // the process-level series stay

    expect(await liveKeys(stack, tenant.tenantId)).toEqual([]);
    const live = await tenant.http.ok<{ tenant: { metrics: { requests: number; outputTokens: string } } }>(LIVE, {
      id: tenant.tenantId,
    });
    expect(live.tenant.metrics).toEqual({ requests: 0, outputTokens: "0" });

    expect(await usageRows(stack, completionId)).toEqual([]);
  });
});

describe("the defaults (neither variable set)", () => {
  let stack: Stack<ApiProcess>;
  beforeAll(async () => {
    stack = await startStack({ api: apiProcess(), model: "tiny", workers: 1, workerEnv: E2E_WORKER_ENV });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  it("record the completion: per-tenant series in both processes, live metrics, and its usage events", async () => {
    const { tenant, completionId, tokens } = await serveOne(stack);
    expect(tokens).toBe(10);
    expect(stack.workers[0].output()).not.toMatch(/BENCHMARK_BASELINE_SKIP_USAGE/);

    const rows = await waitFor("usage events written", async () => {
      const r = await usageRows(stack, completionId);
      return r.some((e) => e.meter === "OUTPUT_TOKENS") ? r : undefined;
    });
    expect(rows.filter((e) => e.meter === "OUTPUT_TOKENS").map((e) => Number(e.quantity))).toEqual([tokens]);

    const live = await waitFor("live metrics flushed", async () => {
      const m = await tenant.http.ok<{ tenant: { metrics: { requests: number; outputTokens: string } } }>(LIVE, {
        id: tenant.tenantId,
      });
      return Number(m.tenant.metrics.outputTokens) === tokens && m.tenant.metrics.requests === 1
        ? m.tenant.metrics
        : undefined;
    });
    expect(live).toEqual({ requests: 1, outputTokens: String(tokens) });
    expect((await liveKeys(stack, tenant.tenantId)).length).toBeGreaterThan(0);

    const worker = await scrapeWorkerMetrics(workerMetricsUrl(stack), TEST_ADMIN_KEY);
    expect(seriesOf(worker, "lite_tokens_generated_total", tenant.tenantId)).toEqual([
      expect.stringMatching(new RegExp(` ${tokens}$`)),
    ]);
    expect(seriesOf(worker, "lite_expert_cache_uses_total", tenant.tenantId).length).toBeGreaterThan(0);
    const api = await scrapeWorkerMetrics(apiMetricsUrl(stack), TEST_ADMIN_KEY);
    expect(seriesOf(api, "lite_requests_admitted_total", tenant.tenantId).length).toBe(1);
    expect(api).toMatch(/^lite_api_graphql_operations_total\{/m);
  });
});
