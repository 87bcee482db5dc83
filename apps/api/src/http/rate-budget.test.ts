import type { Principal } from "@lite/auth";
import { RateBudget } from "./rate-budget";

const tenant = (id: string): Principal => ({ role: "TENANT", apiKeyId: `key_${id}`, tenantId: `ten_${id}` });

/** A budget of 4 units refilled at 2 per second on a clock the test moves. */
function budgetAt(calmMs: number) {
  let now = 1_000_000;
  const budget = new RateBudget(2, 4, () => now, calmMs);
  const served = (p: Principal, n: number) =>
    Array.from({ length: n }, () => budget.take(p)).filter((w) => w === 0).length;
  return { budget, served, advance: (ms: number) => (now += ms) };
}

describe("RateBudget", () => {
  it("without calmMs, a refused caller gets its whole burst back once it has refilled", () => {
    const { served, advance } = budgetAt(0);
    const a = tenant("a");
    expect(served(a, 6)).toBe(4); // the burst, then refused
    advance(2000); // 4 units refilled
    expect(served(a, 6)).toBe(4);
  });

  it("with calmMs, a refused caller is paced one unit at a time until it has gone calmMs without a refusal", () => {
    const { served, advance } = budgetAt(10_000);
    const a = tenant("a");
    expect(served(a, 6)).toBe(4); // a caller within the rate has its burst
    advance(2000); // enough to refill the burst, but a was refused: one unit at most
    expect(served(a, 6)).toBe(1);
    advance(500); // the rate itself still applies: one unit per 500 ms
    expect(served(a, 1)).toBe(1);
    advance(500);
    expect(served(a, 1)).toBe(1);
    // 10 s after its last refusal (the 5 of the second round), the burst is back
    advance(10_000);
    expect(served(a, 6)).toBe(4);
  });

  it("pacing one tenant leaves another tenant's burst whole", () => {
    const { served, advance } = budgetAt(10_000);
    expect(served(tenant("a"), 6)).toBe(4);
    advance(2000);
    expect(served(tenant("a"), 6)).toBe(1);
    expect(served(tenant("b"), 6)).toBe(4);
  });

  it("an operator key (no tenant) is paced on its own", () => {
    const { served, advance } = budgetAt(10_000);
    const op1: Principal = { role: "ADMIN", apiKeyId: "key_op1", tenantId: null };
    const op2: Principal = { role: "ADMIN", apiKeyId: "key_op2", tenantId: null };
    expect(served(op1, 6)).toBe(4);
    advance(2000);
    expect(served(op1, 6)).toBe(1);
    expect(served(op2, 6)).toBe(4);
  });
});
