import { heldByTenant, tenantsAtHoldCap } from "./hold-caps";

const held = (...t: Array<[string, number, number]>) => new Map(t.map(([id, n, weight]) => [id, { n, weight }]));
const taken = (...t: Array<[string, number]>) => new Map(t);

describe("hold caps", () => {
  it("lets a tenant nobody holds yet take ceil(batch ÷ (tenants held + 1)) in one fill", () => {
    expect(tenantsAtHoldCap(4, held(), taken(["a", 3]))).toEqual(new Set());
    expect(tenantsAtHoldCap(4, held(), taken(["a", 4]))).toEqual(new Set(["a"]));
    // one tenant held: a newcomer may take half the batch
    expect(tenantsAtHoldCap(8, held(["a", 2, 1]), taken(["b", 3]))).toEqual(new Set());
    expect(tenantsAtHoldCap(8, held(["a", 2, 1]), taken(["b", 4]))).toEqual(new Set(["b"]));
  });

  it("caps a held tenant at its weighted share of the batch plus one spare", () => {
    // equal weights, batch 4: cap = ceil(4 × 1/2) + 1 = 3
    expect(tenantsAtHoldCap(4, held(["a", 3, 1], ["b", 1, 1]), taken())).toEqual(new Set(["a"]));
    expect(tenantsAtHoldCap(4, held(["a", 2, 1], ["b", 1, 1]), taken())).toEqual(new Set());
    // what this fill already took counts: b 1 held + 2 taken reaches 3
    expect(tenantsAtHoldCap(4, held(["a", 2, 1], ["b", 1, 1]), taken(["b", 2]))).toEqual(new Set(["b"]));
  });

  it("follows weights, never above the batch", () => {
    // weights 3:1, batch 8: a's cap = ceil(8 × 3/4) + 1 = 7, b's = ceil(8 × 1/4) + 1 = 3
    const h = held(["a", 6, 3], ["b", 2, 1]);
    expect(tenantsAtHoldCap(8, h, taken())).toEqual(new Set());
    expect(tenantsAtHoldCap(8, h, taken(["a", 1], ["b", 1]))).toEqual(new Set(["a", "b"]));
    // alone, a tenant's share is the whole batch: capped at the batch, not batch + 1
    expect(tenantsAtHoldCap(8, held(["a", 7, 1]), taken())).toEqual(new Set());
    expect(tenantsAtHoldCap(8, held(["a", 8, 1]), taken())).toEqual(new Set(["a"]));
  });

  it("counts held sequences per tenant", () => {
    const m = heldByTenant([
      { tenantId: "a", tenantWeight: 2 },
      { tenantId: "b", tenantWeight: 1 },
      { tenantId: "a", tenantWeight: 2 },
    ]);
    expect(m).toEqual(held(["a", 2, 2], ["b", 1, 1]));
  });
});
