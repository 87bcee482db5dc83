import { maxServiceLag, receivedShares, type ReceivedToken } from "../../bench/lib/service-lag";
import { CLIENT_LENGTHS, CLIENT_MODES, planRequests } from "../../bench/lib/client-fairness";

const tok = (atMs: number, tenant: number, cost = 1): ReceivedToken => ({ atMs, tenant, cost });

describe("fairness bench: service lag as clients receive tokens", () => {
  it("is the weighted fair share of the service so far minus the tenant's own, at its worst", () => {
    // weights 1:3; the heavy tenant receives 3 tokens before the light one gets its first
    const tokens = [tok(10, 1), tok(20, 1), tok(30, 1), tok(40, 0)];
    expect(maxServiceLag(tokens, [1, 3], 0, 100)).toEqual({ lag: 0.75, tenant: 0, atMs: 30 });
  });

  it("counts cost-weighted tokens, in receipt order whatever the array order", () => {
    // a DEEP token (cost 7) to the light tenant first: the heavy one trails 7 × 3/4
    const tokens = [tok(20, 1), tok(10, 0, 7)];
    expect(maxServiceLag(tokens, [1, 3], 0, 100)).toEqual({ lag: 5.25, tenant: 1, atMs: 10 });
  });

  it("measures only inside the window, from its start", () => {
    const tokens = [tok(5, 1), tok(5, 1), tok(20, 0), tok(30, 1), tok(200, 1)];
    expect(maxServiceLag(tokens, [1, 1], 10, 100)).toEqual({ lag: 0.5, tenant: 1, atMs: 10 });
  });

  it("stays under one token when service follows the weights token by token", () => {
    const tokens = [tok(1, 1), tok(2, 1), tok(3, 0)];
    expect(maxServiceLag(tokens, [1, 2], 0, 10).lag).toBeCloseTo(2 / 3, 12);
    expect(maxServiceLag([tok(1, 0), tok(2, 1), tok(2, 1)], [1, 2], 0, 10).lag).toBeCloseTo(2 / 3, 12);
  });

  it("shares: cost-weighted tokens in the window vs weight shares, relative error", () => {
    const tokens = [tok(1, 0, 3), tok(2, 1), tok(3, 1), tok(50, 0, 100)];
    const [a, b] = receivedShares(tokens, [1, 1], 0, 10);
    expect(a).toEqual({
      weight: 1,
      tokens: 1,
      costWeightedTokens: 3,
      share: 0.6,
      weightShare: 0.5,
      relativeError: expect.closeTo(0.2, 12),
    });
    expect(b.share).toBeCloseTo(0.4, 12);
    expect(b.relativeError).toBeCloseTo(0.2, 12);
  });
});

describe("fairness bench: the simultaneous-start plan", () => {
  it("gives each tenant perWeight × weight requests of every length and mode, interleaved", () => {
    const plan = planRequests([1, 2, 4], 20);
    const of = (k: number) => plan.filter((r) => r.tenant === k);
    expect([of(0).length, of(1).length, of(2).length]).toEqual([20, 40, 80]);
    for (let k = 0; k < 3; k++) {
      expect(new Set(of(k).map((r) => r.maxTokens))).toEqual(new Set(CLIENT_LENGTHS));
      expect(new Set(of(k).map((r) => r.mode))).toEqual(new Set(CLIENT_MODES));
    }
    // every 15 requests of a tenant hold each (length, mode) pair once: the same mix all along
    for (let k = 0; k < 3; k++)
      expect(
        new Set(
          of(k)
            .slice(0, 15)
            .map((r) => `${r.maxTokens}/${r.mode}`),
        ).size,
      ).toBe(15);
    // the first 7 submissions: the weights' proportions (1 + 2 + 4), not one tenant's run
    expect(
      plan
        .slice(0, 7)
        .map((r) => r.tenant)
        .sort(),
    ).toEqual([0, 1, 1, 2, 2, 2, 2]);
    expect(Math.min(...CLIENT_LENGTHS)).toBe(16);
    expect(Math.max(...CLIENT_LENGTHS)).toBe(512);
  });
});
