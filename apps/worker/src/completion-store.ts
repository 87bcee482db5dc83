import type { PrismaClient } from "@lite/db";
import type { CompletionSpec, CompletionStore } from "./ports";

/** The completion rows the API writes, as the worker reads and finalises them. */
export function prismaCompletionStore(db: PrismaClient, weightTtlMs = 5000): CompletionStore {
  const weights = new Map<string, { weight: number; at: number }>();
  return {
    async tenantWeight(tenantId) {
      const hit = weights.get(tenantId);
      if (hit && Date.now() - hit.at < weightTtlMs) return hit.weight;
      const t = await db.tenant.findUnique({ where: { id: tenantId }, select: { weight: true } });
      const weight = t?.weight ?? 1;
      weights.set(tenantId, { weight, at: Date.now() });
      if (weights.size > 10000) weights.clear();
      return weight;
    },
    async load(completionId) {
      const row = await db.completion.findUnique({
        where: { id: completionId },
        include: { tenant: { select: { weight: true } } },
      });
      if (!row) return null;
      const model = await db.model.findUnique({ where: { id: row.modelId }, select: { name: true } });
      const spec: CompletionSpec = {
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
      return spec;
    },
    async markRunning(completionId, at) {
      await db.completion.updateMany({
        where: { id: completionId, status: "QUEUED" },
        data: { status: "RUNNING", startedAt: at },
      });
    },
    async finalise(f) {
      // Only a live row is finalised: a row already final (e.g. cancelled by the API while
      // queued) keeps its outcome.
      await db.completion.updateMany({
        where: { id: f.completionId, status: { in: ["QUEUED", "RUNNING"] } },
        data: {
          status: f.status,
          finishReason: f.finishReason,
          text: f.text,
          outputTokens: f.outputTokens,
          error: f.error ?? null,
          finishedAt: f.finishedAt,
        },
      });
    },
  };
}
