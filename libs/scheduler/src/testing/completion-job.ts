import type { CompletionJob } from "../job-catalog";

/**
 * A queued completion's job as the scheduler's tests enqueue it: a FAST, 16-token completion
 * of `tenantId` whose payload nothing in the scheduler reads (it only dispatches).
 */
export function testCompletionJob(tenantId: string, completionId: string): CompletionJob {
  return {
    version: 1,
    completionId,
    tenantId,
    modelName: "default",
    prompt: "hello",
    seed: "1",
    tierIds: ["t0"],
    mode: "FAST",
    temperature: 0,
    maxTokens: 16,
    costWeight: 1,
    degraded: false,
    enqueuedAtMs: 0,
  };
}
