/**
 * docs/grafana/lite-llm.json only charts series this code exports: every `lite_*` name in a
 * panel's query is registered by the API (apps/api metrics.ts, admission counters) or a
 * worker (libs/telemetry worker metrics, libs/cache expert cache metrics).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createCacheMetrics } from "@lite/cache";
import { createApiCompletionMetrics, createRegistry, createWorkerMetrics } from "@lite/telemetry";
import { apiMetrics } from "../../apps/api/src/metrics";

const dashboardPath = path.resolve(__dirname, "..", "..", "docs", "grafana", "lite-llm.json");

function exportedNames(): Set<string> {
  createApiCompletionMetrics(apiMetrics.registry);
  const worker = createRegistry();
  createWorkerMetrics(worker);
  createCacheMetrics(worker);
  return new Set([...apiMetrics.registry.getMetricsAsArray(), ...worker.getMetricsAsArray()].map((m) => m.name));
}

describe("Grafana dashboard", () => {
  it("is valid JSON whose panels query only exported series", () => {
    const dashboard = JSON.parse(fs.readFileSync(dashboardPath, "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const names = exportedNames();
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const t of panel.targets)
        for (const m of t.expr.matchAll(/\blite_[a-z_]+/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ""));
    }
    expect(used.size).toBeGreaterThanOrEqual(10);
    expect([...used].filter((n) => !names.has(n))).toEqual([]);
  });
});
