/**
 * createCompletion, the request path (docs/ARCHITECTURE.md "The request path"):
 *  1. input limits (prompt bytes, maxTokens, temperature, idempotency key), before anything
 *     is read;
 *  2. the principal is a tenant's key, the tenant exists and is not suspended (a suspended
 *     tenant is refused before anything is reserved or queued); a live idempotency key of
 *     the tenant answers its completion here, or CONFLICT for another request (idempotency.ts);
 *  3. the model and TierSet (libs/auth resolveTierSet: grants, audited ALLOW/DENY), and the
 *     model's context: 1 BOS + prompt bytes + maxTokens must fit (`resolveTarget`);
 *     a prompt whose KV bytes exceed the tenant's kvCacheBytes can never run: QUOTA_EXCEEDED
 *     naming kvCacheBytes, audited DENY (prompt-kv.ts);
 *  4. admission, degrading the TierSet under a DEGRADE policy (admit-with-degrade.ts);
 *  5. the row (QUEUED) with its idempotency key, then the job on the tenant's queue with the
 *     tenant's weight. A failure after admission undoes it: no row → the reservation is
 *     settled (also when a concurrent create with the same key won: its completion is the
 *     answer); no job → the completion is ended FAILED (endCompletion) and its key released
 *     — nothing accepted is lost silently.
 * Refusals are returned as values; PostgreSQL or Redis unreachable is UNAVAILABLE (the
 * client retries); anything else thrown is a bug.
 *
 * Traced (libs/tracing, a no-op while tracing is off): `completion.create` around it all,
 * `completion.admission` around step 4 and `completion.enqueue` (PRODUCER) around the job's
 * enqueue, whose W3C trace context travels in the job (`CompletionJob.traceparent`) so the
 * worker's spans join the same trace. Attributes: ids, model, mode, counts, error codes.
 */
import { randomBytes } from "node:crypto";
import {
  badInput,
  DEFAULT_TIER_MODE,
  DomainError,
  err,
  isTransientInfraError,
  newId,
  notFound,
  ok,
  type Result,
} from "@lite/core";
import { actorOf, resolveTierSet, type Principal, type ResolvedTierSet, type TierSet } from "@lite/auth";
import type { CompletionJob } from "@lite/scheduler";
import { ATTR, SpanKind, SpanStatusCode, traceparentOf, withSpan, type Span } from "@lite/tracing";
import { effectiveQuota } from "@lite/tenancy";
import type { CompletionInput, CompletionResources, CompletionRow, CompletionView } from "./completion.types";
import { admitWithDegrade, auditRefusal, refuseWithinRateWindow } from "./admit-with-degrade";
import { promptKvRefusal } from "./prompt-kv";
import { toCompletion } from "./completion-queries";
import { endUnheld } from "./end-completion";
import {
  checkInputKey,
  claimOf,
  createRowClaimingKey,
  releaseKey,
  replayOf,
  type IdempotencyClaim,
} from "./idempotency";

export async function createCompletion(
  r: CompletionResources,
  principal: Principal,
  input: CompletionInput,
): Promise<Result<CompletionView>> {
  return withSpan("completion.create", {}, r.traceContext, async (span, traceContext) => {
    if (principal.tenantId) span.setAttribute(ATTR.tenantId, principal.tenantId);
    span.setAttribute(ATTR.maxTokens, input.maxTokens);
    const answer = await createTraced({ ...r, traceContext }, principal, input);
    if (answer.ok) {
      span.setAttributes({ [ATTR.completionId]: answer.value.id, [ATTR.status]: answer.value.status });
    } else noteRefusal(span, answer.error);
    return answer;
  });
}

/** A refusal on a span: its code; UNAVAILABLE (a service away) marks the span ERROR. */
function noteRefusal(span: Span, e: DomainError): void {
  span.setAttribute(ATTR.errorCode, e.code);
  if (e.code === "UNAVAILABLE") span.setStatus({ code: SpanStatusCode.ERROR, message: e.code });
}

async function createTraced(
  r: CompletionResources,
  principal: Principal,
  input: CompletionInput,
): Promise<Result<CompletionView>> {
  const refused = checkCompletionInput(r.inputLimits, input);
  if (refused) return err(refused);
  try {
    return await createChecked(r, principal, input);
  } catch (e) {
    if (!isTransientInfraError(e)) throw e;
    r.log.warn({ err: e }, "createCompletion: a backing service is unreachable");
    return err(
      new DomainError("UNAVAILABLE", "a backing service is briefly unreachable; retry later", {
        retryAfterMs: 2000,
        retryable: true,
        cause: e,
      }),
    );
  }
}

/** Step 1: contract limits on a request that need no model or queue. */
export function checkCompletionInput(
  limits: CompletionResources["inputLimits"],
  input: CompletionInput,
): DomainError | null {
  if (Buffer.byteLength(input.prompt, "utf8") > limits.maxPromptBytes) {
    return badInput("input.prompt", `must be at most ${limits.maxPromptBytes} bytes`);
  }
  if (!Number.isInteger(input.maxTokens) || input.maxTokens < 1 || input.maxTokens > limits.maxOutputTokens) {
    return badInput("input.maxTokens", `must be from 1 to ${limits.maxOutputTokens}`);
  }
  const t = input.temperature ?? 0;
  if (!Number.isFinite(t) || t < 0 || t > 2) return badInput("input.temperature", "must be from 0 to 2");
  return checkInputKey(input);
}

async function createChecked(
  r: CompletionResources,
  principal: Principal,
  input: CompletionInput,
): Promise<Result<CompletionView>> {
  const tenantId = principal.tenantId;
  if (!tenantId) return err(new DomainError("FORBIDDEN", "only tenant keys create completions", { reason: "ROLE" }));
  const loadTenant = () => r.db.tenant.findUnique({ where: { id: tenantId }, include: { quota: true } });
  const tenant = r.caches ? await r.caches.tenants.get(tenantId, loadTenant) : await loadTenant();
  if (!tenant) return err(notFound("tenant", tenantId));
  if (tenant.suspended) return err(new DomainError("FORBIDDEN", "tenant is suspended", { reason: "TENANT_SUSPENDED" }));
  const claim = claimOf(input);
  const replay = claim && (await replayOf(r, tenantId, claim));
  if (replay) return replay;
  const overRate = await refuseWithinRateWindow(r, principal, tenantId);
  if (overRate) return err(overRate);

  const target = await resolveTarget(r, principal, tenantId, input);
  if (!target.ok) return target;
  const quota = effectiveQuota(tenant.quota);
  const kvRefusal = promptKvRefusal(r, target.value.model.name, input.prompt, quota.kvCacheBytes);
  if (kvRefusal) {
    await auditRefusal(r, principal, tenantId, "completion", kvRefusal.code, "kvCacheBytes");
    return err(kvRefusal);
  }
  const completionId = newId("completion", r.clock.nowMs());
  // From here a crash leaves work half-done across Redis and PostgreSQL: the intent tells
  // the reconciler. It is removed on every answer, without holding the answer for it (one
  // round trip less per request): one left by a failed removal or a crash right after the
  // answer is the reconciler's, as is one left by a throw (cleanup may be partial).
  await r.intents.begin(tenantId, completionId, r.clock.nowMs());
  r.faultAt?.("intent");
  const answer = await admitAndQueue(
    r,
    principal,
    { tenantId, completionId, tenantWeight: tenant.weight, claim },
    input,
    {
      quota,
      ...target.value,
    },
  );
  r.intents.end(tenantId, completionId).catch((e: unknown) => {
    r.log.warn({ err: e, completionId }, "createCompletion: could not remove its create intent (the reconciler will)");
  });
  return answer;
}

/** Steps 4 and 5: admission (degrading under DEGRADE), then the row and the job. */
async function admitAndQueue(
  r: CompletionResources,
  principal: Principal,
  ids: Pick<Admitted, "tenantId" | "completionId" | "tenantWeight" | "claim">,
  input: CompletionInput,
  target: { quota: ReturnType<typeof effectiveQuota>; tierSet: ResolvedTierSet; model: Admitted["model"] },
): Promise<Result<CompletionView>> {
  const admitted = await withSpan("completion.admission", {}, r.traceContext, async (span) => {
    span.setAttributes({ [ATTR.tenantId]: ids.tenantId, [ATTR.completionId]: ids.completionId });
    const a = await admitWithDegrade(r, principal, {
      tenantId: ids.tenantId,
      completionId: ids.completionId,
      maxTokens: input.maxTokens,
      quota: target.quota,
      tierSet: target.tierSet,
    });
    if (a.ok) span.setAttributes({ [ATTR.mode]: a.value.chosen.mode, [ATTR.degraded]: a.value.degraded });
    else noteRefusal(span, a.error);
    return a;
  });
  if (!admitted.ok) return admitted;
  r.faultAt?.("admitted");
  return writeAndEnqueue(r, principal, {
    ...ids,
    model: target.model,
    chosen: admitted.value.chosen,
    degraded: admitted.value.degraded,
    input,
  });
}

/** Step 3: the model (by id or name), the TierSet the tenant may use, and the context check. */
async function resolveTarget(
  r: Pick<CompletionResources, "db" | "audit" | "maxContextTokens" | "caches">,
  principal: Principal,
  tenantId: string,
  input: CompletionInput,
): Promise<Result<{ tierSet: ResolvedTierSet; model: { id: string; name: string } }>> {
  let modelId: string | null = null;
  if (input.model) {
    const model = await r.db.model.findFirst({
      where: { OR: [{ id: input.model }, { name: input.model }] },
      select: { id: true },
    });
    if (!model) return err(new DomainError("NOT_FOUND", `model ${input.model} not found`, { field: "input.model" }));
    modelId = model.id;
  }
  const resolved = await resolveTierSet(
    r.db,
    tenantId,
    { modelId, mode: input.tiers ? null : (input.mode ?? DEFAULT_TIER_MODE), tierIds: input.tiers ?? null },
    { audit: r.audit, actor: actorOf(principal), cache: r.caches },
  );
  if (!resolved.ok) return resolved;
  const tierSet = resolved.value;
  const model = { id: tierSet.modelId, name: await modelName(r, tierSet.modelId) };

  const promptTokens = Buffer.byteLength(input.prompt, "utf8");
  const context = r.maxContextTokens(model.name);
  if (context !== undefined && 1 + promptTokens + input.maxTokens > context) {
    return err(
      badInput(
        "input.maxTokens",
        `prompt (${promptTokens} tokens + BOS) plus maxTokens (${input.maxTokens}) exceeds the model context of ${context}`,
      ),
    );
  }
  return ok({ tierSet, model });
}

/** Model names by id: a registered model's name never changes, so they are cached per process. */
const modelNames = new Map<string, string>();
async function modelName(r: Pick<CompletionResources, "db">, modelId: string): Promise<string> {
  let name = modelNames.get(modelId);
  if (name === undefined) {
    name = (await r.db.model.findUniqueOrThrow({ where: { id: modelId }, select: { name: true } })).name;
    modelNames.set(modelId, name);
  }
  return name;
}

/** A server-chosen seed: 64 random bits as a decimal string. */
export function randomSeed(): string {
  return randomBytes(8).readBigUInt64BE(0).toString();
}

interface Admitted {
  completionId: string;
  tenantId: string;
  tenantWeight: number;
  model: { id: string; name: string };
  chosen: TierSet;
  degraded: boolean;
  input: CompletionInput;
  claim: IdempotencyClaim | null;
}

/** A completion's job, from its row (the row holds every value the worker runs it with). */
export function completionJobOf(row: CompletionRow, modelName: string, nowMs: number): CompletionJob {
  return {
    version: 1,
    completionId: row.id,
    tenantId: row.tenantId,
    modelName,
    prompt: row.prompt,
    seed: row.seed,
    tierIds: row.tierSet,
    mode: row.mode,
    temperature: row.temperature,
    maxTokens: row.maxTokens,
    costWeight: row.costWeight,
    degraded: row.degraded,
    enqueuedAtMs: nowMs,
  };
}

/** Step 5: the row, then the job; each failure undoes what admission reserved. */
async function writeAndEnqueue(
  r: CompletionResources,
  principal: Principal,
  a: Admitted,
): Promise<Result<CompletionView>> {
  const { completionId, tenantId, degraded, input } = a;
  const seed = input.seed ?? randomSeed();
  const temperature = input.temperature ?? 0;
  const written = await writeRow(r, principal, a, seed, temperature);
  if ("answer" in written) return written.answer;
  const row = written.row;
  r.faultAt?.("row");
  try {
    await withSpan("completion.enqueue", { kind: SpanKind.PRODUCER }, r.traceContext, async (span, ctx) => {
      span.setAttributes({
        [ATTR.tenantId]: tenantId,
        [ATTR.completionId]: completionId,
        [ATTR.model]: a.model.name,
        [ATTR.mode]: row.mode,
        [ATTR.degraded]: degraded,
        [ATTR.inputTokens]: row.promptTokens,
      });
      const traceparent = traceparentOf(ctx);
      const job = { ...completionJobOf(row, a.model.name, r.clock.nowMs()), ...(traceparent ? { traceparent } : {}) };
      await r.scheduler.enqueue(job, a.tenantWeight);
    });
  } catch (e) {
    r.log.error({ err: e, completionId, tenantId }, "enqueue failed after admission; marking the completion FAILED");
    await endUnheld(r, { tenantId, completionId }, "ERROR", "could not be queued").catch((e2) =>
      r.log.error({ err: e2, completionId }, "could not mark an unqueued completion FAILED"),
    );
    await releaseKey(r.db, completionId).catch((e2) =>
      r.log.error({ err: e2, completionId }, "could not release the idempotency key of an unqueued completion"),
    );
    return err(
      new DomainError("UNAVAILABLE", "the completion could not be queued; retry later", {
        retryAfterMs: 1000,
        retryable: true,
        cause: e,
      }),
    );
  }
  r.metrics.admitted.inc({ tenant: tenantId, degraded: String(degraded) });
  return ok(toCompletion(row));
}

/**
 * The row (QUEUED) and its idempotency key. No row → the reservation is settled: on an
 * error (rethrown), and when a concurrent create holds the key (its completion answers).
 */
async function writeRow(
  r: CompletionResources,
  principal: Principal,
  a: Admitted,
  seed: string,
  temperature: number,
): Promise<{ row: CompletionRow } | { answer: Result<CompletionView> }> {
  const { completionId, tenantId, chosen, input } = a;
  let row;
  try {
    row = await createRowClaimingKey(
      r,
      {
        id: completionId,
        tenantId,
        modelId: a.model.id,
        apiKeyId: principal.apiKeyId ?? null,
        mode: chosen.mode,
        tierSet: chosen.tierIds,
        degraded: a.degraded,
        seed,
        prompt: input.prompt,
        promptTokens: Buffer.byteLength(input.prompt, "utf8"),
        maxTokens: input.maxTokens,
        temperature,
        costWeight: chosen.costWeight,
      },
      a.claim,
    );
  } catch (e) {
    await r.admission.settle(tenantId, completionId, 0).catch(() => undefined);
    throw e;
  }
  if (row !== "taken") return { row };
  await r.admission.settle(tenantId, completionId, 0);
  const theirs = a.claim && (await replayOf(r, tenantId, a.claim));
  return { answer: theirs ?? err(keyReleased()) };
}

/** The concurrent create that held the key could not queue its completion and let the key go. */
function keyReleased(): DomainError {
  return new DomainError("UNAVAILABLE", "a concurrent request with this idempotency key failed; retry", {
    retryAfterMs: 1000,
    retryable: true,
  });
}
