import type { ExpertLease, ExpertRef, ExpertStore } from "../expert-store";

/**
 * A real store whose loads wait on a gate the test opens (test-only). While the gate is
 * closed, `load` does not start: the expert stays cold, so the sequences that need it stay
 * parked, for as long as the test wants, without any timing. Experts named in `failing`
 * fail their load once the gate opens (as a file that fails its hash check would).
 */
export class GatedExpertStore implements ExpertStore {
  /** keys whose load was asked for, in order (repeats included) */
  readonly loadsAsked: string[] = [];
  /** keys whose load must fail */
  readonly failing = new Set<string>();
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  constructor(private readonly inner: ExpertStore) {}

  /** Loads asked for from now on (and those waiting) wait until `open()`. */
  shut(): void {
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate();
    this.gate = Promise.resolve();
  }

  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    return this.inner.acquire(expert, tenantIds);
  }

  async load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    this.loadsAsked.push(expert.key);
    await this.gate;
    if (this.failing.has(expert.key)) throw new Error(`${expert.file.path}: sha256 mismatch`);
    await this.inner.load(expert, tenantIds);
  }

  async get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    await this.load(expert, tenantIds);
    const lease = this.acquire(expert, tenantIds);
    if (!lease) throw new Error(`expert ${expert.key} not resident after its load`);
    return lease;
  }

  close(): Promise<void> {
    this.open();
    return this.inner.close();
  }
}
