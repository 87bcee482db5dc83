import { randomBytes } from "node:crypto";
import { DomainError, badInput, newId, notFound, type Result } from "@lite/core";
import { checkFirst, decodeCursor, page } from "@lite/db";
import { actorOf, resolveTierSet, smallerTierSets, type TierSet } from "@lite/auth";
import type { AdmissionRefusal, CompletionJob } from "@lite/scheduler";
import type { TokenEvent as StreamEvent } from "@lite/stream";
import type { ApiContext } from "../context";
import type { CompletionStatus } from "../common/enums";
import type { CompletionInput } from "./completion.input";

/**
 * createCompletion, the request path (ARCHITECTURE.md "The request path"):
 *  1. input limits (the resolver's checkCompletionInput), the tenant row: a suspended
 *     tenant is refused before anything is reserved or queued;
 *  2. the TierSet (libs/auth resolveTierSet: grants, audited ALLOW/DENY), the model's
 *     context (1 BOS + prompt bytes + maxTokens must fit);
 *  3. admission (Admission.admit with the tenant's Quota). Refused: UNAVAILABLE → 503;
 *     REJECT policy → RATE_LIMITED/QUOTA_EXCEEDED 429 with the Retry-After of the limit
 *     that bit; DEGRADE policy and a cost-weighted limit (tokensPerMinute,
 *     maxOutstandingTokens) → the largest smaller TierSet that fits, marked degraded;
 *     none fits → 429;
 *  4. the row (QUEUED), then the job on the tenant's queue (FairScheduler.enqueue with the
 *     tenant's weight). A failure after admission undoes it: the row is marked FAILED,
 *     the stream ended, the reservation settled — nothing accepted is lost silently.
 */

const DEGRADABLE = new Set(["tokensPerMinute", "maxOutstandingTokens"]);

function refusalError(r: AdmissionRefusal, tenantId: string): DomainError {
  const message =
    r.code === "UNAVAILABLE"
      ? "the deployment is saturated; retry later"
      : `tenant ${tenantId} is over its ${r.limit} limit; retry later`;
  return new DomainError(r.code, message, { retryAfterMs: r.retryAfterMs, reason: r.limit, retryable: true });
}

/** Model names by id: a registered model's name never changes, so they are cached per process. */
const modelNames = new Map<string, string>();
async function modelName(ctx: ApiContext, modelId: string): Promise<string> {
  let name = modelNames.get(modelId);
  if (name === undefined) {
    name = (await ctx.services.db.model.findUniqueOrThrow({ where: { id: modelId }, select: { name: true } })).name;
    modelNames.set(modelId, name);
  }
  return name;
}

/** A server-chosen seed: 64 random bits as a decimal string. */
export function randomSeed(): string {
  return randomBytes(8).readBigUInt64BE(0).toString();
}

/**
 * PostgreSQL or Redis unreachable (connection refused/reset, ioredis giving up on a
 * command, Prisma's connection codes): the request is answered UNAVAILABLE (503,
 * Retry-After) rather than a masked 500 — the client may simply retry.
 */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error) || e instanceof DomainError) return false;
  const code = (e as { code?: unknown }).code;
  if (
    typeof code === "string" &&
    ["P1001", "P1002", "P1017", "P2024", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"].includes(code)
  ) {
    return true;
  }
  if (e.name === "MaxRetriesPerRequestError" || e.name === "PrismaClientInitializationError") return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|connection terminated|Can't reach database|Connection terminated|max retries per request/i.test(
    `${e.message} ${String((e as { cause?: unknown }).cause ?? "")}`,
  );
}

function unavailable(e: unknown): DomainError {
  return new DomainError("UNAVAILABLE", "a backing service is briefly unreachable; retry later", {
    retryAfterMs: 2000,
    retryable: true,
    cause: e,
  });
}

export async function createCompletion(ctx: ApiContext, input: CompletionInput) {
  try {
    return await createCompletionUnguarded(ctx, input);
  } catch (e) {
    if (isUnavailable(e)) {
      ctx.services.log.warn({ err: e }, "createCompletion: a backing service is unreachable");
      throw unavailable(e);
    }
    throw e;
  }
}

async function createCompletionUnguarded(ctx: ApiContext, input: CompletionInput) {
  const s = ctx.services;
  const c = s.completions;
  const tenantId = ctx.principal.tenantId;
  if (!tenantId) throw new DomainError("FORBIDDEN", "only tenant keys create completions", { reason: "ROLE" });
  const tenant = await s.db.tenant.findUnique({ where: { id: tenantId }, include: { quota: true } });
  if (!tenant) throw notFound("tenant", tenantId);
  if (tenant.suspended) throw new DomainError("FORBIDDEN", "tenant is suspended", { reason: "TENANT_SUSPENDED" });

  // The model: by id, or by name for convenience.
  let modelId: string | null = null;
  if (input.model) {
    const model = await s.db.model.findFirst({
      where: { OR: [{ id: input.model }, { name: input.model }] },
      select: { id: true },
    });
    if (!model) throw new DomainError("NOT_FOUND", `model ${input.model} not found`, { field: "input.model" });
    modelId = model.id;
  }
  const resolved = await resolveTierSet(
    s.db,
    tenantId,
    { modelId, mode: input.tiers ? null : (input.mode ?? "BALANCED"), tierIds: input.tiers ?? null },
    { audit: s.audit, actor: actorOf(ctx.principal) },
  );
  if (!resolved.ok) throw resolved.error;
  const tierSet = resolved.value;
  const model = { id: tierSet.modelId, name: await modelName(ctx, tierSet.modelId) };

  const promptTokens = Buffer.byteLength(input.prompt, "utf8");
  const context = c.maxContextTokens(model.name);
  if (context !== undefined && 1 + promptTokens + input.maxTokens > context) {
    throw badInput(
      "input.maxTokens",
      `prompt (${promptTokens} tokens + BOS) plus maxTokens (${input.maxTokens}) exceeds the model context of ${context}`,
    );
  }

  const quota = tenant.quota ?? {
    requestsPerMinute: 600,
    tokensPerMinute: 200000,
    maxConcurrentRequests: 32,
    maxOutstandingTokens: 65536,
    overQuotaPolicy: "REJECT" as const,
  };
  const limits = {
    requestsPerMinute: quota.requestsPerMinute,
    tokensPerMinute: quota.tokensPerMinute,
    maxConcurrentRequests: quota.maxConcurrentRequests,
    maxOutstandingTokens: quota.maxOutstandingTokens,
  };
  const completionId = newId("completion", s.clock.nowMs());
  const admit = (set: TierSet) =>
    c.admission.admit({ tenantId, completionId, maxTokens: input.maxTokens, costWeight: set.costWeight, limits });

  let chosen: TierSet = tierSet;
  let degraded = false;
  let decision: Result<unknown, AdmissionRefusal> = await admit(tierSet);
  if (
    !decision.ok &&
    decision.error.code !== "UNAVAILABLE" &&
    quota.overQuotaPolicy === "DEGRADE" &&
    DEGRADABLE.has(decision.error.limit)
  ) {
    for (const smaller of smallerTierSets(tierSet)) {
      const attempt = await admit(smaller);
      decision = attempt;
      if (attempt.ok) {
        chosen = smaller;
        degraded = true;
        break;
      }
      if (!DEGRADABLE.has(attempt.error.limit)) break;
    }
  }
  if (!decision.ok) {
    c.metrics.throttled.inc({ tenant: tenantId, code: decision.error.code });
    await s.audit.record({
      tenantId,
      actor: actorOf(ctx.principal),
      action: "completion.admit",
      resource: `completion:${completionId}`,
      decision: "DENY",
      reason: `${decision.error.code} ${decision.error.limit}`,
    });
    throw refusalError(decision.error, tenantId);
  }

  const seed = input.seed ?? randomSeed();
  const temperature = input.temperature ?? 0;
  let row;
  try {
    row = await s.db.completion.create({
      data: {
        id: completionId,
        tenantId,
        modelId: model.id,
        apiKeyId: ctx.principal.apiKeyId,
        status: "QUEUED",
        mode: chosen.mode,
        tierSet: chosen.tierIds,
        degraded,
        seed,
        prompt: input.prompt,
        promptTokens,
        maxTokens: input.maxTokens,
        temperature,
        costWeight: chosen.costWeight,
      },
    });
  } catch (e) {
    await c.admission.settle(tenantId, completionId, 0).catch(() => undefined);
    throw e;
  }
  const job: CompletionJob = {
    version: 1,
    completionId,
    tenantId,
    modelName: model.name,
    prompt: input.prompt,
    seed,
    tierIds: chosen.tierIds,
    mode: chosen.mode,
    temperature,
    maxTokens: input.maxTokens,
    costWeight: chosen.costWeight,
    degraded,
    enqueuedAtMs: s.clock.nowMs(),
  };
  try {
    await c.scheduler.enqueue(job, tenant.weight);
  } catch (e) {
    s.log.error({ err: e, completionId, tenantId }, "enqueue failed after admission; marking the completion FAILED");
    await failQueued(ctx, tenantId, completionId, "ERROR", "could not be queued").catch((e2) =>
      s.log.error({ err: e2, completionId }, "could not mark an unqueued completion FAILED"),
    );
    throw new DomainError("UNAVAILABLE", "the completion could not be queued; retry later", {
      retryAfterMs: 1000,
      retryable: true,
      cause: e,
    });
  }
  c.metrics.admitted.inc({ tenant: tenantId, degraded: String(degraded) });
  return toCompletion(row);
}

/** Ends a completion that never ran: row final, stream's done event, reservation settled. */
async function failQueued(
  ctx: ApiContext,
  tenantId: string,
  completionId: string,
  reason: "CANCELLED" | "ERROR",
  error?: string,
) {
  const s = ctx.services;
  await s.db.completion.updateMany({
    where: { id: completionId, status: { in: ["QUEUED", "RUNNING"] } },
    data: {
      status: reason === "CANCELLED" ? "CANCELLED" : "FAILED",
      finishReason: reason,
      finishedAt: new Date(s.clock.nowMs()),
      error: error ?? null,
    },
  });
  const endInRedis = async () => {
    const last = await s.completions.streams.lastIndex(tenantId, completionId);
    await s.completions.streams.append(tenantId, completionId, [
      { version: 1, index: last + 1, tokenId: -1, text: "", done: true, finishReason: reason },
    ]);
    await s.completions.admission.settle(tenantId, completionId, 0);
  };
  try {
    await endInRedis();
  } catch (e) {
    // Redis away (often why the enqueue failed): keep trying in the background so the
    // reservation is released and subscribers see the end (both steps are idempotent).
    s.log.warn({ err: e, completionId }, "could not end the completion in Redis yet; retrying in the background");
    void (async () => {
      for (let attempt = 1; attempt <= 60; attempt++) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
        try {
          await endInRedis();
          return;
        } catch {
          /* retry */
        }
      }
      s.log.error({ completionId }, "gave up ending an unqueued completion in Redis");
    })();
  }
}

type Row = Awaited<ReturnType<ApiContext["services"]["db"]["completion"]["findFirstOrThrow"]>>;

export function toCompletion(row: Row, live?: { text: string; outputTokens: number }) {
  return {
    id: row.id,
    tenantId: row.tenantId,
    model: row.modelId,
    status: row.status,
    mode: row.mode,
    tierSet: row.tierSet,
    degraded: row.degraded,
    seed: row.seed,
    promptTokens: row.promptTokens,
    outputTokens: live?.outputTokens ?? row.outputTokens,
    text: live?.text ?? row.text,
    finishReason: row.finishReason,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

/** The row, with the text so far from the stream while it runs. */
export async function withLiveText(ctx: ApiContext, row: Row) {
  if (row.status !== "QUEUED" && row.status !== "RUNNING") return toCompletion(row);
  const events = await readStored(ctx, row.tenantId, row.id);
  const tokens = events.filter((e) => !e.done);
  return toCompletion(row, { text: tokens.map((e) => e.text).join(""), outputTokens: tokens.length });
}

async function readStored(ctx: ApiContext, tenantId: string, completionId: string): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  const key = ctx.services.keys.completionStream(tenantId, completionId);
  const entries = await ctx.services.redis.xrange(key, "-", "+");
  for (const [, fields] of entries) {
    for (let i = 0; i < fields.length; i += 2)
      if (fields[i] === "e") out.push(JSON.parse(fields[i + 1]) as StreamEvent);
  }
  return out;
}

export async function listCompletions(
  ctx: ApiContext,
  scope: string | null,
  first: number,
  after: string | null,
  status: CompletionStatus | null,
) {
  checkFirst(first);
  const where: Record<string, unknown> = {};
  if (scope !== null) where.tenantId = scope;
  if (status) where.status = status;
  if (after) where.id = { lt: decodeCursor(after) };
  const rows = await ctx.services.db.completion.findMany({ where, orderBy: { id: "desc" }, take: first + 1 });
  const p = page(rows, first);
  return { nodes: p.nodes.map((r) => toCompletion(r)), pageInfo: p.pageInfo };
}

const CANCEL_WAIT_MS = 3000;

/**
 * cancelCompletion: a finished completion is returned unchanged. Otherwise the scheduler
 * sets the cancel flag and removes a waiting job; a removed job never ran, so the API ends
 * it here. A running job is ended by its worker within one decode step; we wait briefly
 * for that so the answer usually shows CANCELLED.
 */
export async function cancelCompletion(ctx: ApiContext, row: Row) {
  const s = ctx.services;
  if (row.status !== "QUEUED" && row.status !== "RUNNING") return toCompletion(row);
  const outcome = await s.completions.scheduler.cancel(row.tenantId, row.id);
  await s.audit.record({
    tenantId: row.tenantId,
    actor: actorOf(ctx.principal),
    action: "completion.cancel",
    resource: `completion:${row.id}`,
    decision: "OK",
    reason: outcome,
  });
  if (outcome === "removed") {
    await failQueued(ctx, row.tenantId, row.id, "CANCELLED");
  } else {
    const deadline = Date.now() + CANCEL_WAIT_MS;
    while (Date.now() < deadline) {
      const now = await s.db.completion.findUniqueOrThrow({ where: { id: row.id } });
      if (now.status !== "QUEUED" && now.status !== "RUNNING") return toCompletion(now);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return withLiveText(ctx, await s.db.completion.findUniqueOrThrow({ where: { id: row.id } }));
}

/** The subscription's source: replay from fromIndex, then live, as the contract's TokenEvents. */
export async function tokenEvents(ctx: ApiContext, row: Row, fromIndex: number): Promise<AsyncIterable<unknown>> {
  if (!Number.isInteger(fromIndex) || fromIndex < 0) throw badInput("fromIndex", "must be a non-negative integer");
  const s = ctx.services;
  const finished = row.status !== "QUEUED" && row.status !== "RUNNING";
  const streams = s.completions.streams;
  // A finished completion whose stream is gone answers STREAM_EXPIRED at once (not as a stream error later).
  if (finished && !(await streams.exists(row.tenantId, row.id))) {
    throw new DomainError(
      "STREAM_EXPIRED",
      `token stream of ${row.id} has expired; completion(id).text holds the text`,
    );
  }
  const abort = new AbortController();
  const source = streams.read(row.tenantId, row.id, fromIndex, abort.signal, {
    ifAbsent: finished ? "expired" : "wait",
  });
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        async next() {
          const r = await it.next();
          if (r.done) return { done: true, value: undefined };
          const e = r.value;
          return {
            done: false,
            value: {
              completionId: row.id,
              index: e.index,
              tokenId: e.tokenId,
              text: e.text,
              done: e.done,
              finishReason: e.finishReason,
            },
          };
        },
        async return() {
          abort.abort();
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
