/**
 * Fairness as clients see it, computed from tokens timestamped at the client: each tenant's
 * share of the cost-weighted tokens received in a window, and the largest service lag over
 * it. Pure functions, no I/O.
 *
 * Service lag of a backlogged tenant k at time t: (its weighted fair share of the total
 * cost-weighted service received since the start) − (the cost-weighted service it received),
 * i.e. S(t) × w_k ÷ W − R_k(t), W the sum of the weights. The caller picks a window in which
 * every tenant is backlogged (it ends when the first one runs out of work). The lag only
 * grows when another tenant receives a token, so evaluating it after every received token
 * finds its maximum.
 */

export interface ReceivedToken {
  /** client receipt time (performance.now(), ms) */
  atMs: number;
  tenant: number;
  /** the completion's cost weight (its TierSet's): what this token counts as */
  cost: number;
}

export interface TenantShare {
  weight: number;
  tokens: number;
  costWeightedTokens: number;
  share: number;
  weightShare: number;
  relativeError: number;
}

export interface ServiceLag {
  /** cost-weighted tokens */
  lag: number;
  tenant: number;
  /** ms after the start */
  atMs: number;
}

/** Shares of cost-weighted tokens received in [startMs, endMs] vs weight shares. */
export function receivedShares(
  tokens: readonly ReceivedToken[],
  weights: readonly number[],
  startMs: number,
  endMs: number,
): TenantShare[] {
  const raw = weights.map(() => 0);
  const weighted = weights.map(() => 0);
  for (const t of tokens) {
    if (t.atMs < startMs || t.atMs > endMs) continue;
    raw[t.tenant]++;
    weighted[t.tenant] += t.cost;
  }
  const total = weighted.reduce((a, b) => a + b, 0);
  const weightTotal = weights.reduce((a, b) => a + b, 0);
  return weights.map((w, k) => {
    const share = total > 0 ? weighted[k] / total : 0;
    const weightShare = w / weightTotal;
    return {
      weight: w,
      tokens: raw[k],
      costWeightedTokens: weighted[k],
      share,
      weightShare,
      relativeError: Math.abs(share - weightShare) / weightShare,
    };
  });
}

/** The largest service lag of any tenant over [startMs, endMs], tenants all backlogged. */
export function maxServiceLag(
  tokens: readonly ReceivedToken[],
  weights: readonly number[],
  startMs: number,
  endMs: number,
): ServiceLag {
  const inWindow = tokens.filter((t) => t.atMs >= startMs && t.atMs <= endMs).sort((a, b) => a.atMs - b.atMs);
  const received = weights.map(() => 0);
  let total = 0;
  const weightTotal = weights.reduce((a, b) => a + b, 0);
  let worst: ServiceLag = { lag: 0, tenant: -1, atMs: 0 };
  for (const t of inWindow) {
    received[t.tenant] += t.cost;
    total += t.cost;
    for (let k = 0; k < weights.length; k++) {
      const lag = (total * weights[k]) / weightTotal - received[k];
      if (lag > worst.lag) worst = { lag, tenant: k, atMs: t.atMs - startMs };
    }
  }
  return worst;
}
