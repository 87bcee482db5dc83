import { Registry } from "prom-client";
import type { Clock } from "@lite/core";
import { createApiCompletionMetrics, createWorkerMetrics } from "./tenant-metrics";
import { OTHER_TENANTS, TenantLabels } from "./tenant-labels";

function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return { nowMs: () => now, advance: (ms) => void (now += ms) } as Clock & { advance(ms: number): void };
}

async function tenantValues(registry: Registry): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const m of await registry.getMetricsAsJSON()) {
    const set = new Set<string>();
    for (const v of m.values) if (v.labels.tenant !== undefined) set.add(String(v.labels.tenant));
    out.set(m.name, set);
  }
  return out;
}

describe("TenantLabels (bounded tenant label)", () => {
  it("never exceeds N + 1 tenant values with 10,000 tenants, and the top N by traffic keep their id", async () => {
    const N = 20;
    const clock = manualClock();
    const registry = new Registry();
    const labels = new TenantLabels({ maxTenants: N, registry, clock, rankEveryMs: 1000 });
    const worker = createWorkerMetrics(registry, { tenantLabels: labels });
    const api = createApiCompletionMetrics(registry, { tenantLabels: labels });
    const heavy = Array.from({ length: N }, (_, i) => `ten_heavy${i}`);
    for (let i = 0; i < 10_000; i++) {
      const tenant = `ten_${i}`;
      worker.tokensGenerated.inc({ tenant });
      worker.ttftSeconds.observe({ tenant }, 0.01);
      api.admitted.inc({ tenant, degraded: "false" });
      api.throttled.inc({ tenant, code: "RATE_LIMITED" });
      if (i % 100 === 0) for (const h of heavy) worker.tokensGenerated.inc({ tenant: h }, 50);
      if (i % 1000 === 0) clock.advance(1000);
      for (const [name, values] of await tenantValuesEvery(registry, i)) {
        if (values.size > N + 1) throw new Error(`${name} has ${values.size} tenant values`);
      }
    }
    labels.rank();
    expect(labels.namedTenants()).toEqual([...heavy].sort());
    // Demoted tenants' series are gone; the heavy ones keep their id from now on.
    for (const h of heavy) worker.tokensGenerated.inc({ tenant: h });
    worker.tokensGenerated.inc({ tenant: "ten_newcomer" });
    const after = (await tenantValues(registry)).get("lite_tokens_generated_total")!;
    expect(after.size).toBeLessThanOrEqual(N + 1);
    for (const h of heavy) expect(after.has(h)).toBe(true);
    expect(after.has(OTHER_TENANTS)).toBe(true);
    expect(after.has("ten_newcomer")).toBe(false);
  });

  it("N = 0 puts every tenant under `other`; a negative N is refused", () => {
    const labels = new TenantLabels({ maxTenants: 0 });
    expect(labels.label("ten_a")).toBe(OTHER_TENANTS);
    expect(() => new TenantLabels({ maxTenants: -1 })).toThrow(/maxTenants/);
  });

  it("keeps `other` monotonic: a tenant named later starts a new series, `other` keeps what it counted", async () => {
    const clock = manualClock();
    const registry = new Registry();
    const labels = new TenantLabels({ maxTenants: 1, registry, clock, rankEveryMs: 1000 });
    const m = createWorkerMetrics(registry, { tenantLabels: labels });
    m.tokensGenerated.inc({ tenant: "ten_a" });
    m.tokensGenerated.inc({ tenant: "ten_b" }, 10);
    const before = (await registry.getSingleMetric("lite_tokens_generated_total")!.get()).values;
    expect(before.find((v) => v.labels.tenant === OTHER_TENANTS)?.value).toBe(10);
    clock.advance(1000);
    m.tokensGenerated.inc({ tenant: "ten_b" }, 5); // ranks first: b is now the top tenant
    m.tokensGenerated.inc({ tenant: "ten_b" }, 1);
    const now = (await registry.getSingleMetric("lite_tokens_generated_total")!.get()).values;
    expect(now.find((v) => v.labels.tenant === OTHER_TENANTS)?.value).toBe(10);
    expect(now.find((v) => v.labels.tenant === "ten_b")?.value).toBe(6);
    expect(now.find((v) => v.labels.tenant === "ten_a")).toBeUndefined();
  });
});

/** The label sets, read every 500 tenants (reading every time would make the test slow). */
async function tenantValuesEvery(registry: Registry, i: number): Promise<Map<string, Set<string>>> {
  return i % 500 === 499 ? tenantValues(registry) : new Map();
}
