/**
 * Per-tenant KV-cache quotas in one worker (docs/KV-QUOTAS.md). Every decode batch of the
 * worker's models registers its sequences here; a tenant's KV bytes summed over its live
 * sequences, in every batch, stay within its `kvCacheBytes`.
 *
 * Before a batch's step, for each tenant with a sequence about to step (`plan`):
 *  1. Its sequences, oldest first (the order they joined), each *need* bytes: a sequence that
 *     steps now, or holds no KV (fresh or paused: it keeps its place in the queue), needs
 *     what it holds after its next step (all its positions, kv-bytes.ts); one that holds KV
 *     and does not step now needs what it holds.
 *  2. The longest prefix whose needs fit the quota keeps its KV and steps.
 *  3. Past it, every sequence that holds KV pauses: its KV is dropped (zeroed), counted as a
 *     pause for its tenant; it and every other sequence past the prefix sit out the step. So
 *     the newest sequences pause first, and only the tenant's own: other tenants' needs are
 *     never summed in.
 *  4. When the oldest alone cannot fit its next step it has outgrown the quota: it ends
 *     (decode-batch.ts: LENGTH, or ERROR naming kvCacheBytes when it has produced nothing),
 *     and the next becomes the oldest.
 * A paused sequence resumes, by one prefill of prompt + tokens so far (the resume path,
 * resume.test.ts), once it is back in the fitting prefix: until then `blocked` reports it and
 * the engine gives it no slot. A tenant whose quota is not known yet waits for its read.
 * Batches sharing a ledger step one at a time (the engine's decode does): a drop never
 * touches a sequence inside a running pass.
 */

/** Where a tenant's per-worker KV quota comes from (the worker: PostgreSQL through a short cache). */
export interface KvQuotaSource {
  /** the tenant's kvCacheBytes; a promise while it is read (the tenant's sequences wait for it) */
  kvCacheBytes(tenantId: string): number | Promise<number>;
}

/** What the ledger needs of a sequence (decode-batch.ts implements it). */
export interface KvMember {
  readonly tenantId: string;
  /** KV bytes held now */
  heldBytes(): number;
  /** KV bytes held after its next step: every position it has, since a sequence without KV prefills them all */
  nextBytes(): number;
  /** finished: holds and needs nothing */
  done(): boolean;
  /** inside a running forward pass */
  inPass(): boolean;
  /** drops its KV (zeroed); its next step recomputes it */
  drop(): void;
}

export interface KvPlan {
  /** the members that step now */
  run: Set<KvMember>;
  /** members that alone cannot fit their next step: they end */
  outgrown: Set<KvMember>;
}

export interface KvLedgerOptions {
  /** default: no quota (tools, single runs) */
  quotas?: KvQuotaSource;
  /** told each pause (the worker's lite_kv_pauses_total) */
  onPause?: (tenantId: string) => void;
}

export class KvLedger {
  /** each tenant's members, oldest first (the order they joined) */
  private readonly members = new Map<string, Set<KvMember>>();
  private readonly known = new Map<string, number>();
  private readonly reading = new Set<string>();
  private readonly pauseCounts = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly opts: KvLedgerOptions = {}) {}

  /** Joins (again: as the newest) its tenant's members. */
  register(m: KvMember): void {
    const own = this.members.get(m.tenantId) ?? new Set<KvMember>();
    own.delete(m);
    this.members.set(m.tenantId, own.add(m));
  }

  unregister(m: KvMember): void {
    const own = this.members.get(m.tenantId);
    if (!own?.delete(m)) return;
    if (own.size === 0) this.members.delete(m.tenantId);
    this.changed();
  }

  /** Called when a sequence may have become able to step (wakes the batches' whenReady). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A member finished or dropped its KV: others of its tenant may fit now. */
  changed(): void {
    for (const l of this.listeners) l();
  }

  /** The tenant's quota in bytes: Infinity without a source; undefined while its first read runs. */
  quotaOf(tenantId: string): number | undefined {
    const source = this.opts.quotas;
    if (!source) return Infinity;
    const answer = source.kvCacheBytes(tenantId);
    if (!(answer instanceof Promise)) {
      this.known.set(tenantId, answer);
      return answer;
    }
    if (!this.reading.has(tenantId)) {
      this.reading.add(tenantId);
      answer
        .then(
          (q) => void this.known.set(tenantId, q),
          () => undefined,
        )
        .finally(() => {
          this.reading.delete(tenantId);
          this.changed();
        });
    }
    return this.known.get(tenantId);
  }

  /** Steps 1–4 for the tenants of `stepping`: who steps, who pauses, who has outgrown its quota. */
  plan(stepping: readonly KvMember[]): KvPlan {
    const plan: KvPlan = { run: new Set(), outgrown: new Set() };
    for (const a of this.arrangements(stepping, new Set(stepping))) {
      for (const m of a.pause) this.pause(m);
      a.run.forEach((m) => plan.run.add(m));
      a.outgrown.forEach((m) => plan.outgrown.add(m));
    }
    return plan;
  }

  /**
   * The plan of a step between a running pass's layers (decode-batch.ts StepOptions): the
   * pass's members count as stepping, and nothing is paused. A pause would drop the KV of a
   * sequence of the pass in the middle of it. So a tenant whose sequences would not all fit
   * as they are runs none of its arrivals: that happens when its quota was lowered while the
   * pass ran. They wait for the next step, whose plan may pause.
   */
  planBetweenLayers(stepping: readonly KvMember[], inPass: readonly KvMember[]): KvPlan {
    const plan: KvPlan = { run: new Set(), outgrown: new Set() };
    for (const a of this.arrangements(stepping, new Set([...stepping, ...inPass]))) {
      if (a.pause.length > 0 || a.outgrown.some((m) => m.inPass())) continue;
      a.run.forEach((m) => m.inPass() || plan.run.add(m));
      a.outgrown.forEach((m) => plan.outgrown.add(m));
    }
    return plan;
  }

  /** Steps 1–4 (arrange) for each tenant of `stepping` whose quota is known (the others' sequences wait). */
  private arrangements(stepping: readonly KvMember[], steps: ReadonlySet<KvMember>): Arrangement[] {
    const out: Arrangement[] = [];
    for (const tenantId of new Set(stepping.map((m) => m.tenantId))) {
      const quota = this.quotaOf(tenantId);
      if (quota !== undefined) out.push(arrange(this.membersOf(tenantId), steps, quota));
    }
    return out;
  }

  /**
   * True when the member cannot step now: its tenant's quota is unknown, or it holds no KV
   * and would not fit behind the older ones (a member holding KV steps, or its step pauses it).
   */
  blocked(m: KvMember): boolean {
    if (m.done() || !this.members.get(m.tenantId)?.has(m)) return false;
    const quota = this.quotaOf(m.tenantId);
    if (quota === undefined) return true;
    if (m.heldBytes() > 0) return false;
    const a = arrange(this.membersOf(m.tenantId), new Set([m]), quota);
    return !a.run.includes(m) && !a.outgrown.includes(m);
  }

  /** KV bytes held per tenant now, over every registered sequence (lite_kv_bytes). */
  bytesByTenant(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tenantId, own] of this.members) {
      let bytes = 0;
      for (const m of own) bytes += m.heldBytes();
      out.set(tenantId, bytes);
    }
    return out;
  }

  /** Pauses so far of the tenant's sequences in this worker. */
  pauses(tenantId: string): number {
    return this.pauseCounts.get(tenantId) ?? 0;
  }

  private need(m: KvMember, stepsNow: boolean): number {
    const held = m.heldBytes();
    return stepsNow || held === 0 ? m.nextBytes() : held;
  }

  /** The tenant's unfinished members, oldest first (planned at every step: no scan of the others, no sort). */
  private membersOf(tenantId: string): KvMember[] {
    const out: KvMember[] = [];
    for (const m of this.members.get(tenantId) ?? []) if (!m.done()) out.push(m);
    return out;
  }

  private pause(m: KvMember): void {
    if (m.inPass())
      throw new Error("kv-ledger: batches sharing a ledger must step one at a time (a drop reached a running pass)");
    m.drop();
    this.pauseCounts.set(m.tenantId, this.pauses(m.tenantId) + 1);
    this.opts.onPause?.(m.tenantId);
    this.changed();
  }
}

/** One tenant's members for a step: who steps, who pauses, who has outgrown its quota. */
interface Arrangement {
  run: KvMember[];
  pause: KvMember[];
  outgrown: KvMember[];
}

/** Steps 1–4 for one tenant's members (oldest first): pure, so `blocked` asks what `plan` would do. */
function arrange(members: readonly KvMember[], steps: ReadonlySet<KvMember>, quota: number): Arrangement {
  const run: KvMember[] = [];
  const pause: KvMember[] = [];
  const outgrown: KvMember[] = [];
  let used = 0;
  let fitting = true;
  let oldest = true;
  for (const m of members) {
    const held = m.heldBytes();
    const need = steps.has(m) || held === 0 ? m.nextBytes() : held;
    if (fitting && used + need <= quota) {
      used += need;
      oldest = false;
      if (steps.has(m)) run.push(m);
      continue;
    }
    if (fitting && oldest) {
      // The oldest alone does not fit: it ends at its next step (now, when it steps).
      if (steps.has(m)) outgrown.push(m);
      else if (held > 0) {
        // it holds more than a lowered quota until then: the newer ones pause
        used += need;
        oldest = false;
        fitting = false;
      }
      continue;
    }
    fitting = false;
    oldest = false;
    if (held > 0) pause.push(m);
  }
  return { run, pause, outgrown };
}
