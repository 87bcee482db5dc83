import { SlotAllocator, type Candidate } from "./slot-allocator";

function run(alloc: SlotAllocator, held: Candidate[], slots: number, steps: number): Map<string, number> {
  const tokens = new Map<string, number>();
  for (let s = 0; s < steps; s++) {
    const ids = new Set(alloc.pick(held, slots));
    for (const c of held) {
      if (!ids.has(c.id)) continue;
      tokens.set(c.tenantId, (tokens.get(c.tenantId) ?? 0) + 1);
      alloc.charge(c.tenantId, c.cost, c.weight);
    }
  }
  return tokens;
}

const seqs = (tenantId: string, weight: number, n: number, from: number, cost = 1): Candidate[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${tenantId}-${i}`, tenantId, weight, cost, order: from + i }));

describe("SlotAllocator", () => {
  it("steps everything when there are enough slots", () => {
    const a = new SlotAllocator();
    const held = [...seqs("a", 1, 2, 0), ...seqs("b", 1, 2, 2)];
    expect(a.pick(held, 8).sort()).toEqual(held.map((c) => c.id).sort());
  });

  it("splits slots by weight when tenants hold more than the batch", () => {
    const a = new SlotAllocator();
    // tenant a holds 12 sequences (arrived first), b holds 4; 8 slots, weights 1:3
    const held = [...seqs("a", 1, 12, 0), ...seqs("b", 3, 4, 12)];
    const tokens = run(a, held, 8, 100);
    expect(tokens.get("a")).toBe(400); // the slots b cannot use go to a
    expect(tokens.get("b")).toBe(400); // b is capped by its 4 sequences
    const equal = run(new SlotAllocator(), [...seqs("a", 1, 12, 0), ...seqs("b", 3, 12, 12)], 8, 100);
    expect(equal.get("b")! / equal.get("a")!).toBeCloseTo(3, 1);
  });

  it("counts cost-weighted tokens", () => {
    const a = new SlotAllocator();
    const held = [...seqs("a", 1, 8, 0, 2), ...seqs("b", 1, 8, 8, 1)];
    const tokens = run(a, held, 6, 90);
    // equal weights: a's tokens cost twice as much, so b gets twice the tokens
    expect(tokens.get("b")! / tokens.get("a")!).toBeCloseTo(2, 1);
  });

  it("gives a newly arrived tenant no credit for its idle time", () => {
    const a = new SlotAllocator();
    run(a, seqs("a", 1, 8, 0), 4, 50);
    const before = a.virtualTokensOf("a")!;
    const held = [...seqs("a", 1, 8, 0), ...seqs("b", 1, 8, 8)];
    a.pick(held, 4);
    expect(a.virtualTokensOf("b")).toBe(before);
    const tokens = run(a, held, 4, 50);
    expect(tokens.get("a")).toBe(100);
    expect(tokens.get("b")).toBe(100);
  });

  it("prefers the oldest sequences of a tenant", () => {
    const a = new SlotAllocator();
    const held = seqs("a", 1, 5, 0).reverse();
    expect(a.pick(held, 2)).toEqual(["a-0", "a-1"]);
  });

  it("a tenant that could not use its share earns no credit from it: after the other tenant took the slots it left, the split is by weight at once", () => {
    // The e2e fairness test's start: weight-1 tenant L arrived first and holds 4 sequences,
    // weight-3 tenant H only 2 (the worker's hold limit); 4 slots. H steps all it holds, L
    // takes the 2 slots H leaves. Then H holds 4 and L 2: from the first step on L gets its
    // 1 slot in 4 (before: none for ~100 steps while H caught up on the "credit" of 50 steps
    // in which it stepped everything it had).
    const a = new SlotAllocator();
    run(a, [...seqs("L", 1, 4, 0), ...seqs("H", 3, 2, 4)], 4, 50);
    const after = [...seqs("L", 1, 2, 100), ...seqs("H", 3, 4, 102)];
    for (let step = 0; step < 20; step++) {
      const chosen = a.pick(after, 4);
      expect(chosen.filter((id) => id.startsWith("L-")).length).toBe(1);
      for (const id of chosen) {
        const c = after.find((x) => x.id === id)!;
        a.charge(c.tenantId, c.cost, c.weight);
      }
    }
  });

  it("uncontended steps leave no debt: tenants that all stepped everything start even when slots run short", () => {
    const a = new SlotAllocator();
    run(a, [...seqs("L", 1, 2, 0), ...seqs("H", 3, 2, 2)], 8, 50); // 4 held, 8 slots
    const tokens = run(a, [...seqs("L", 1, 4, 0), ...seqs("H", 3, 4, 4)], 4, 40);
    expect(tokens.get("L")).toBe(40);
    expect(tokens.get("H")).toBe(120);
  });
});
