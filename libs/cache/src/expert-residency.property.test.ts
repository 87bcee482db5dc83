import fc from "fast-check";
import type { ExpertLease } from "@lite/model";
import { ExpertResidency } from "./expert-residency";
import { RESIDENCIES } from "./cache-entry";
import type { TenantCacheQuota } from "./cache-quota";
import { TieredExpertStore } from "./tiered-expert-store";
import { openTinyCacheModel, type TinyCacheModel } from "./testing/tiny-cache.fixture";

/**
 * Property: under any interleaving of loads, uses and releases by several tenants (real
 * files and sessions, capacities small enough to force eviction), after every call no
 * tenant's charged HOT or WARM bytes exceed its quota, the worker's totals stay within its
 * capacities, and every leased expert is still HOT.
 */
describe("ExpertResidency (property)", () => {
  let m: TinyCacheModel;
  beforeAll(async () => {
    m = await openTinyCacheModel();
  });
  afterAll(() => m.cleanup());

  const TENANTS = ["A", "B", "C"] as const;

  type Op =
    | { kind: "load"; who: number[]; expert: number }
    | { kind: "acquire"; who: number[]; expert: number }
    | { kind: "release"; index: number };

  const who = fc.uniqueArray(fc.integer({ min: 0, max: TENANTS.length - 1 }), { minLength: 1, maxLength: 3 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("load" as const), who, expert: fc.nat() }),
    fc.record({ kind: fc.constant("acquire" as const), who, expert: fc.nat() }),
    fc.record({ kind: fc.constant("release" as const), index: fc.nat() }),
  );

  /** Settles when the load is done or waiting for room (it then finishes after a later release). */
  async function settleOrWait(residency: ExpertResidency, pending: Set<Promise<unknown>>): Promise<void> {
    for (let i = 0; i < 2000; i++) {
      if (pending.size === 0 || residency.waitingLoads >= pending.size) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error("a load neither finished nor waited");
  }

  it("never exceeds a quota or a capacity, and never evicts a leased expert", async () => {
    const largest = Math.max(...m.refs.map((r) => r.file.bytes));
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 5, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 4, max: 8 }),
        fc.integer({ min: 1, max: 12 }),
        async (ops, hotQuotaExperts, weights, hotCapacityExperts, epochUses) => {
          const quotas = new Map<string, TenantCacheQuota>(
            TENANTS.map((t, i) => [
              t,
              {
                hotMemoryBytes: hotQuotaExperts[i] * largest,
                warmMemoryBytes: (hotQuotaExperts[i] + 1) * largest,
                weight: weights[i],
              },
            ]),
          );
          const residency = new ExpertResidency({
            hotCapacityBytes: hotCapacityExperts * largest,
            warmCapacityBytes: (hotCapacityExperts + 2) * largest,
            quotas: { quotaOf: (t) => quotas.get(t)! },
            epochUses,
          });
          const store = new TieredExpertStore(residency, m.ctx);
          const leases: { lease: ExpertLease; expert: number }[] = [];
          const pending = new Set<Promise<unknown>>();
          const check = () => {
            for (const level of RESIDENCIES) {
              const capacity = residency.capacity(level);
              expect(residency.usedBytes(level)).toBeLessThanOrEqual(capacity);
              for (const [t, bytes] of residency.charges(level)) {
                const q = quotas.get(t)!;
                expect(bytes).toBeLessThanOrEqual(level === "HOT" ? q.hotMemoryBytes! : q.warmMemoryBytes!);
              }
            }
            for (const l of leases) expect(store.levelOf(m.refs[l.expert])).toBe("HOT");
          };
          try {
            for (const o of ops) {
              if (o.kind === "release") {
                if (leases.length > 0) leases.splice(o.index % leases.length, 1)[0].lease.release();
              } else {
                const expert = o.expert % m.refs.length;
                const tenantIds = new Set(o.who.map((i) => TENANTS[i]));
                if (o.kind === "acquire") {
                  const lease = store.acquire(m.refs[expert], tenantIds);
                  if (lease) leases.push({ lease, expert });
                } else {
                  const p: Promise<unknown> = store.load(m.refs[expert], tenantIds).finally(() => pending.delete(p));
                  pending.add(p);
                  p.catch(() => undefined);
                }
              }
              await settleOrWait(residency, pending);
              check();
            }
            // with every lease released, nothing in use: every waiting load gets its room
            for (const l of leases.splice(0)) l.lease.release();
            await Promise.all([...pending].map((p) => p.catch(() => undefined)));
            check();
          } finally {
            await residency.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
