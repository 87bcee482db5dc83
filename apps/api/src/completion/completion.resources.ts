import { CreateIntents, type CompletionResources, type CreateStep } from "@lite/completions";
import { promptKvBytes, readModelLimits, type KvShape } from "@lite/manifest";
import type { ApiContext } from "../context";

/** The resources libs/completions works with, from this process's services. */
export function completionResources(ctx: ApiContext): CompletionResources {
  const s = ctx.services;
  return {
    db: s.db,
    admission: s.completions.admission,
    scheduler: s.completions.scheduler,
    streams: s.completions.streams,
    audit: s.audit,
    clock: s.clock,
    log: s.log,
    metrics: s.completions.metrics,
    inputLimits: { maxPromptBytes: s.env.MAX_PROMPT_BYTES, maxOutputTokens: s.env.MAX_OUTPUT_TOKENS },
    maxContextTokens: (modelName) => s.completions.maxContextTokens(modelName),
    promptKvBytes: (modelName, promptTokens) => {
      const shape = kvShapeOf(s.env.MODEL_DIR, modelName);
      return shape && promptKvBytes(shape, promptTokens);
    },
    idempotencyTtlMs: s.env.IDEMPOTENCY_TTL_HOURS * 3600 * 1000,
    intents: new CreateIntents(s.redis, s.keys),
    caches: s.completions.caches,
    faultAt: s.env.CREATE_FAULT_AT ? killAt(s.env.CREATE_FAULT_AT) : undefined,
    traceContext: ctx.trace,
  };
}

/** Each model's KV shape (layers, dModel) from its manifest, read once per process: a registered model's files never change under its name. */
const kvShapes = new Map<string, KvShape | undefined>();
function kvShapeOf(modelDir: string, modelName: string): KvShape | undefined {
  const key = `${modelDir}\0${modelName}`;
  if (!kvShapes.has(key)) kvShapes.set(key, readModelLimits(modelDir, modelName)?.kvShape);
  return kvShapes.get(key);
}

/** TEST ONLY (CREATE_FAULT_AT): the process dies at that step, as a crash would leave it. */
function killAt(step: CreateStep): (at: CreateStep) => void {
  return (at) => {
    if (at === step) process.kill(process.pid, "SIGKILL");
  };
}
