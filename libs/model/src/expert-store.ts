import * as ort from "onnxruntime-node";
import { readVerifiedFileAsync, type FileEntry } from "@lite/manifest";

/**
 * Where the decode step gets an expert's session. The step asks once per expert per step
 * and names the tenants whose tokens are routed to it, so a cache behind this interface
 * (hot/warm/cold residency, per-tenant charging, encrypted private tiers) can account
 * for every use without the decode loop knowing about it.
 */

export interface ExpertRef {
  /** unique across the model: `<tierId>/l<layer>/g<group>/e<expert>` */
  key: string;
  /** `<tierId>/g<group>/e<expert>`: the layer-less name a step reports (StepOutput.experts) */
  name: string;
  tierId: string;
  layer: number;
  group: number;
  expert: number;
  file: FileEntry;
}

/** An expert's session held in use: a store never releases or evicts it until `release()`. */
export interface ExpertLease {
  readonly session: ort.InferenceSession;
  /**
   * The tenants (of those named to `acquire`) using the expert for the first time since it
   * became resident: the timing defence pads their first use (a store that cannot tell
   * leaves it undefined). A `load` is not a use: the first `acquire` naming a tenant after
   * the load it waited for names it here, as it would had another tenant loaded the expert,
   * so the count of padded first uses is the same whether the expert was hot or cold.
   */
  readonly firstUseBy?: ReadonlySet<string>;
  release(): void;
}

export interface ExpertStore {
  /**
   * The expert if it is HOT now (a session ready), held in use and its use charged to these
   * tenants; undefined when it is not (nothing is started: call `load`). Never waits, so a
   * decode step can park the sequences that need a cold expert and go on with the rest.
   */
  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined;
  /** Makes the expert HOT (read, verify, create its session) off the decode step; resolves when it is. */
  load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void>;
  /** `load` then `acquire`, for callers that may wait (tools, tests). */
  get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease>;
  /**
   * Optional: a sequence's predicted next-layer experts (prefetch-hook.ts). Never waits and
   * never throws: the store fetches what its rules allow, off the decode step, and drops the
   * rest. A store without it gets no predictions (none are computed).
   */
  prefetch?(request: PrefetchRequest): void;
  /**
   * Optional: why these experts (one layer's of a parked sequence, all needed HOT at once
   * for it to pass that layer) can never be HOT together for the tenant — a quota or a
   * capacity below their bytes — or undefined when they can. The decode step then ends the
   * sequence with an error naming the limit instead of parking it on loads that would evict
   * each other forever. A store that cannot tell leaves it out (never refused).
   */
  neverHotTogether?(experts: readonly ExpertRef[], tenantId: string): NeverHotTogether | undefined;
  close(): Promise<void>;
}

/** Why some experts can never be HOT together for a tenant (ExpertStore.neverHotTogether). */
export interface NeverHotTogether {
  /** QUOTA_EXCEEDED: a limit of the tenant's; CAPACITY_TOO_SMALL: the worker's */
  code: "QUOTA_EXCEEDED" | "CAPACITY_TOO_SMALL";
  /** the limit and its value, e.g. `hotMemoryBytes of tenant ten_a (1048576)` */
  limit: string;
}

/** One sequence's prediction for its next layer, as the decode step hands it to the store. */
export interface PrefetchRequest {
  tenantId: string;
  /** the sequence (the worker's completion id): its PREFETCH_BYTES usage is counted under it */
  sequenceId: string;
  /** the sequence's TierSet (granted at its job's start): no expert of another tier may be fetched */
  tierIds: ReadonlySet<string>;
  /** the predicted experts, most wanted first (summed gate over the sequence's rows) */
  experts: ExpertRef[];
  /** false once the sequence has finished or left its batch: what is still queued for it is dropped */
  live(): boolean;
}

export interface ExpertStoreContext {
  root: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
}

/**
 * The plain store: reads the file on first use, checks size and SHA-256 against the
 * signed manifest (refusing tampered bytes before onnxruntime parses them), then keeps
 * the session for the life of the runtime.
 */
export class VerifiedFileExpertStore implements ExpertStore {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly ready = new Map<string, ort.InferenceSession>();
  /** per resident expert, the tenants that used it (acquired it; a load is not a use) */
  private readonly usedBy = new Map<string, Set<string>>();

  constructor(private readonly ctx: ExpertStoreContext) {}

  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    const session = this.ready.get(expert.key);
    if (!session) return undefined;
    const used = this.usedBy.get(expert.key) ?? new Set<string>();
    this.usedBy.set(expert.key, used);
    const firstUseBy = new Set([...tenantIds].filter((t) => !used.has(t)));
    for (const t of firstUseBy) used.add(t);
    return { session, firstUseBy, release: () => undefined };
  }

  async load(expert: ExpertRef): Promise<void> {
    await this.session(expert);
  }

  async get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    await this.session(expert);
    const lease = this.acquire(expert, tenantIds);
    if (!lease) throw new Error(`expert ${expert.key}: the store was closed during its load`);
    return lease;
  }

  private session(expert: ExpertRef): Promise<ort.InferenceSession> {
    let session = this.sessions.get(expert.key);
    if (!session) {
      session = (async () => {
        // Read and hashed off the event loop: a decode step that parked on it goes on meanwhile.
        const bytes = await readVerifiedFileAsync(this.ctx.root, expert.file);
        return ort.InferenceSession.create(bytes, this.ctx.sessionOptions);
      })();
      // A refused file must not poison the map: the next call retries (and refuses again).
      session.then(
        (s) => this.ready.set(expert.key, s),
        () => this.sessions.delete(expert.key),
      );
      this.sessions.set(expert.key, session);
    }
    return session;
  }

  /** experts with a session (or one being created) */
  get residentCount(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.ready.clear();
    this.usedBy.clear();
    await Promise.all(all.map(async (s) => (await s.catch(() => undefined))?.release()));
  }
}
