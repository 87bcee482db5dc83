/**
 * The job catalog shared by the API (producer) and the worker (consumer): one entry per
 * job kind, with its zod schema (versioned), queue name and retry policy.
 */
import { z } from "zod";
import { TIER_MODES } from "@lite/core";

export const CompletionJob = z.object({
  version: z.literal(1),
  completionId: z.string(),
  tenantId: z.string(),
  modelName: z.string(),
  prompt: z.string(),
  seed: z.string(),
  tierIds: z.array(z.string()),
  mode: z.enum(TIER_MODES),
  temperature: z.number(),
  maxTokens: z.number().int(),
  /** the TierSet's cost weight (sum of the tiers' weights relative to the hot tier) */
  costWeight: z.number().positive(),
  degraded: z.boolean(),
  enqueuedAtMs: z.number(),
  /**
   * W3C trace context (`00-<trace id>-<span id>-<flags>`) of the API's enqueue span, so the
   * worker's spans join the request's trace (libs/tracing); absent when the API traces nothing
   */
  traceparent: z
    .string()
    .regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)
    .optional(),
});
export type CompletionJob = z.infer<typeof CompletionJob>;

export const JOB_CATALOG = {
  completion: {
    /** BullMQ queue name inside each tenant's prefix (`<prefix>:{t:<tenant>}:completions:…`) */
    queueName: "completions",
    /** BullMQ job name */
    jobName: "completion",
    schema: CompletionJob,
    /** attempts including the first (a `fail(err, true)` retries until exhausted); stalls are counted separately (maxStalledCount) */
    attempts: 3,
    /** seconds a finished job is kept, so a duplicate enqueue of the same completionId stays ignored */
    keepFinishedSeconds: 86400,
  },
} as const;
