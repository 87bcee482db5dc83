import { systemClock, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { CompletionSpec, Finalisation } from "./completion.types";
import { finaliseRow } from "./end-completion";

export interface CompletionRowStoreOptions {
  /** how long a tenant's scheduling weight is cached, ms; default 5000 */
  weightTtlMs?: number;
  /** cached weights beyond which the cache is cleared, entries; default 10000 */
  maxCachedWeights?: number;
  clock?: Clock;
}

/**
 * The completion rows as a worker reads and writes them; its methods have the shape of the
 * batch engine's CompletionStore port (load, tenantWeight, ungrantedTiers, markRunning, finalise).
 */
export class CompletionRowStore {
  private readonly weights = new Map<string, { weight: number; at: number }>();
  private readonly weightTtlMs: number;
  private readonly maxCachedWeights: number;
  private readonly clock: Clock;

  constructor(
    private readonly db: PrismaClient,
    opts: CompletionRowStoreOptions = {},
  ) {
    this.weightTtlMs = opts.weightTtlMs ?? 5000;
    this.maxCachedWeights = opts.maxCachedWeights ?? 10000;
    this.clock = opts.clock ?? systemClock;
  }

  /** The tenant's scheduling weight (1 for an unknown tenant), cached briefly. */
  async tenantWeight(tenantId: string): Promise<number> {
    const now = this.clock.nowMs();
    const hit = this.weights.get(tenantId);
    if (hit && now - hit.at < this.weightTtlMs) return hit.weight;
    const t = await this.db.tenant.findUnique({ where: { id: tenantId }, select: { weight: true } });
    const weight = t?.weight ?? 1;
    if (this.weights.size >= this.maxCachedWeights) this.weights.clear();
    this.weights.set(tenantId, { weight, at: now });
    return weight;
  }

  /**
   * Which of these tiers the tenant may no longer activate (checked at every job start, never
   * cached, so a revokeTier reaches every job that has not started): the contract's rule
   * that every tier a completion uses is granted to its tenant — a grant row, on a public
   * tier or the tenant's own private one (as libs/auth resolveTierSet reads them). One query.
   */
  async ungrantedTiers(tenantId: string, tierIds: readonly string[]): Promise<string[]> {
    if (tierIds.length === 0) return [];
    // Raw SQL: every job start runs it, and Prisma's query compiler cost ~2 ms of the
    // worker's main thread (which also runs the model) per ORM query against ~1 ms raw.
    const rows = await this.db.$queryRaw<Array<{ tierId: string }>>`
      SELECT g."tierId" FROM "TierGrant" g JOIN "Tier" t ON t.id = g."tierId"
      WHERE g."tenantId" = ${tenantId} AND g."tierId" = ANY(${[...tierIds]}::text[])
        AND (t."ownerTenantId" IS NULL OR t."ownerTenantId" = ${tenantId})`;
    const granted = new Set(rows.map((r) => r.tierId));
    return tierIds.filter((id) => !granted.has(id));
  }

  /** The completion to run (or, when already final, its outcome); null when no such row. */
  async load(completionId: string): Promise<CompletionSpec | null> {
    const row = await this.db.completion.findUnique({
      where: { id: completionId },
      include: { tenant: { select: { weight: true } } },
    });
    if (!row) return null;
    const model = await this.db.model.findUnique({ where: { id: row.modelId }, select: { name: true } });
    return {
      completionId: row.id,
      tenantId: row.tenantId,
      tenantWeight: row.tenant.weight,
      modelName: model?.name ?? row.modelId,
      status: row.status,
      prompt: row.prompt,
      promptTokens: row.promptTokens,
      maxTokens: row.maxTokens,
      temperature: row.temperature,
      seed: row.seed,
      mode: row.mode,
      tierSet: row.tierSet,
      costWeight: row.costWeight,
      createdAt: row.createdAt,
      text: row.text,
      outputTokens: row.outputTokens,
      finishReason: row.finishReason,
    };
  }

  /** QUEUED → RUNNING; a row already RUNNING or final is left alone (a late call never wins). */
  async markRunning(completionId: string, at: Date): Promise<void> {
    // Raw SQL, as ungrantedTiers: once per job start on the worker's main thread.
    await this.db.$executeRaw`
      UPDATE "Completion" SET status = 'RUNNING', "startedAt" = ${at}
      WHERE id = ${completionId} AND status = 'QUEUED'`;
  }

  /** endCompletion's step 1 (the row keeps the first final outcome). */
  async finalise(f: Finalisation): Promise<void> {
    await finaliseRow(this.db, f);
  }
}
