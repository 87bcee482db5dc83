import type { Request, Response } from "express";
import { badInput, DomainError, err, type Result } from "@lite/core";
import type { Principal } from "@lite/auth";
import * as completions from "@lite/completions";
import { effectiveQuota } from "@lite/tenancy";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { completionResources } from "../completion/completion.resources";
import { traceContextOf } from "../http/trace-requests";
import { orThrow } from "../tenant/tenancy.context";
import { renderChatPrompt } from "./chat-template";
import { ChatBody, CompletionBody, maxTokensOf, parseBody, stopsOf, type CommonBody } from "./openai.request";
import { chunkBody, metaOf, openAiFinish, responseBody, usageChunk, usageOf, type Flavour } from "./openai.shapes";
import { openAiError } from "./openai.errors";
import { failedWhileGenerating, TokenRelay, type RelayEnd } from "./token-relay";
import { defaultMaxTokens, modelNameOf } from "./model-names";

/**
 * POST /v1/completions and /v1/chat/completions: the body parsed (zod) into libs/completions'
 * input, then the same createCompletion GraphQL's mutation calls (one admission, one queue),
 * then the completion's token stream relayed as SSE chunks or collected into one answer.
 * Only TENANT keys create (contract). A client that leaves before the end cancels the
 * completion; a stop sequence ends (cancels) it too.
 */
export function createHandler(services: ApiServices, flavour: Flavour) {
  return async (req: Request, res: Response): Promise<void> => {
    const ctx: ApiContext = {
      services,
      principal: res.locals.principal as Principal,
      requestId: String(res.locals.requestId),
      trace: traceContextOf(res),
    };
    if (ctx.principal.role !== "TENANT") {
      throw new DomainError("FORBIDDEN", `role ${ctx.principal.role} may not create completions (TENANT keys only)`, {
        reason: "ROLE",
      });
    }
    const parsed = await parseRequest(services, flavour, req);
    const result = await completions.createCompletion(completionResources(ctx), ctx.principal, parsed.input);
    if (!result.ok && isRateRefusal(result.error)) await setRateLimitSizes(services, ctx.principal, res);
    const created = await orThrow(ctx, flavour === "chat" ? promptAsMessages(result) : result);
    const row = await orThrow(ctx, await completions.findCompletion(services.db, created.id, ctx.principal.tenantId));
    const meta = metaOf(created, await modelNameOf(services, created.model), parsed.includeUsage);
    const relay = new TokenRelay(services.completions.streams, row, parsed.stops);
    const session = new ClientSession(ctx, res, relay, row.id);
    if (parsed.stream) await streamAnswer(flavour, session, meta, created.promptTokens);
    else await jsonAnswer(flavour, session, meta, created.promptTokens);
  };
}

/** How often a stream with nothing to send writes an SSE comment. */
const SSE_KEEPALIVE_MS = 15_000;

interface ParsedRequest {
  input: completions.CompletionInput;
  stops: string[];
  stream: boolean;
  includeUsage: boolean;
}

async function parseRequest(services: ApiServices, flavour: Flavour, req: Request): Promise<ParsedRequest> {
  let body: CommonBody;
  let prompt: string;
  if (flavour === "chat") {
    const chat = unwrap(parseBody(ChatBody, req.body));
    body = chat;
    prompt = renderChatPrompt(chat.messages);
  } else {
    const text = unwrap(parseBody(CompletionBody, req.body));
    body = text;
    prompt = typeof text.prompt === "string" ? text.prompt : text.prompt[0];
  }
  const maxTokens =
    unwrap(maxTokensOf(body)) ?? (await defaultMaxTokens(services, flavour, body.model ?? null, prompt));
  const input: completions.CompletionInput = {
    model: body.model ?? null,
    prompt,
    maxTokens,
    mode: body.mode ?? null,
    tiers: body.tiers ?? null,
    seed: body.seed ?? null,
    // OpenAI's default; GraphQL's is 0 (greedy). Send temperature: 0 for greedy output.
    temperature: body.temperature ?? 1,
    idempotencyKey: idempotencyKeyOf(req),
  };
  return {
    input,
    stops: stopsOf(body),
    stream: body.stream === true,
    includeUsage: body.stream === true && body.stream_options?.include_usage === true,
  };
}

/** A refusal by a per-minute limit (requests or tokens), which OpenAI's x-ratelimit-* headers describe. */
function isRateRefusal(e: DomainError): boolean {
  return e.code === "RATE_LIMITED" && (e.reason === "requestsPerMinute" || e.reason === "tokensPerMinute");
}

/**
 * On a 429 from a per-minute limit: OpenAI's `x-ratelimit-limit-requests` / `-tokens`, the tenant's
 * per-minute limits (read on this refusal path only; openai.errors.ts adds remaining/reset).
 */
async function setRateLimitSizes(services: ApiServices, principal: Principal, res: Response): Promise<void> {
  if (!principal.tenantId) return;
  const row = await services.db.quota.findUnique({ where: { tenantId: principal.tenantId } });
  const quota = effectiveQuota(row);
  res.setHeader("x-ratelimit-limit-requests", String(quota.requestsPerMinute));
  res.setHeader("x-ratelimit-limit-tokens", String(quota.tokensPerMinute));
}

/** For chat, the prompt the library refuses is the rendered messages: the refusal names `messages`. */
function promptAsMessages<T>(r: Result<T>): Result<T> {
  if (r.ok || r.error.field !== "input.prompt") return r;
  return err(badInput("messages", r.error.message.replace(/^input\.prompt: /, "the rendered prompt ")));
}

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: DomainError }): T {
  if (!r.ok) throw r.error;
  return r.value;
}

function idempotencyKeyOf(req: Request): string | null {
  const header = req.headers["idempotency-key"];
  if (header === undefined) return null;
  const value = Array.isArray(header) ? header[0] : header;
  const problem = completions.checkIdempotencyKey(value);
  if (problem) throw badInput("Idempotency-Key", `the header ${problem}`);
  return value;
}

/**
 * The client's side of one completion: relays tokens, and when the client leaves before the
 * answer is complete, stops the relay and cancels the completion (admission released by its
 * end). A stop sequence cancels it as well: the client has what it asked for.
 */
class ClientSession {
  private complete = false;

  constructor(
    readonly ctx: ApiContext,
    readonly res: Response,
    private readonly relay: TokenRelay,
    private readonly completionId: string,
  ) {
    const left = () => {
      if (this.complete) return;
      this.complete = true;
      this.relay.abort();
      this.cancelInBackground("client disconnected");
    };
    // Gone while the completion was being created: no "close" event is left to come.
    if (res.closed || res.socket?.destroyed) left();
    else res.on("close", left);
  }

  async relayTokens(send: (text: string) => void): Promise<RelayEnd | null> {
    const end = await this.relay.run(send);
    if (this.res.destroyed || (end.finishReason === null && !end.stoppedBySequence)) return null;
    if (end.stoppedBySequence) this.cancelInBackground("stop sequence");
    return end;
  }

  /** The answer is written in full: closing the connection now cancels nothing. */
  finished(): void {
    this.complete = true;
  }

  private cancelInBackground(why: string): void {
    const { services, principal } = this.ctx;
    void (async () => {
      const row = await completions.findCompletion(services.db, this.completionId, principal.tenantId);
      if (row.ok) await completions.cancelCompletion(completionResources(this.ctx), principal, row.value);
    })().catch((e) =>
      services.log.warn({ err: e, completionId: this.completionId, why }, "cancel after the client failed"),
    );
  }
}

async function jsonAnswer(
  flavour: Flavour,
  s: ClientSession,
  meta: ReturnType<typeof metaOf>,
  promptTokens: number,
): Promise<void> {
  const end = await s.relayTokens(() => undefined);
  if (!end) return;
  if (end.finishReason === "ERROR") throw failedWhileGenerating(meta.id);
  const finish = openAiFinish(end.finishReason, end.stoppedBySequence);
  s.finished();
  s.res.json(responseBody(flavour, meta, end.text, finish, usageOf(promptTokens, end.completionTokens)));
}

async function streamAnswer(
  flavour: Flavour,
  s: ClientSession,
  meta: ReturnType<typeof metaOf>,
  promptTokens: number,
): Promise<void> {
  const { res } = s;
  res.status(200);
  res.setHeader("content-type", "text/event-stream; charset=utf-8");
  res.setHeader("cache-control", "no-cache");
  res.setHeader("x-accel-buffering", "no");
  res.socket?.setNoDelay(true);
  res.flushHeaders();
  const write = (body: unknown) => res.write(`data: ${JSON.stringify(body)}\n\n`);
  let first = true;
  if (flavour === "chat") {
    write(chunkBody(flavour, meta, { text: "", first: true }));
    first = false;
  }
  // An SSE comment while the completion waits in its queue, so proxies keep the connection.
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), SSE_KEEPALIVE_MS);
  let end: RelayEnd | null;
  try {
    end = await s.relayTokens((text) => {
      write(chunkBody(flavour, meta, { text, first }));
      first = false;
    });
  } finally {
    clearInterval(keepAlive);
  }
  if (!end) return;
  if (end.finishReason === "ERROR") {
    write(openAiError(failedWhileGenerating(meta.id)).body);
  } else {
    write(chunkBody(flavour, meta, { text: "", finish: openAiFinish(end.finishReason, end.stoppedBySequence) }));
    if (meta.includeUsage) write(usageChunk(flavour, meta, usageOf(promptTokens, end.completionTokens)));
  }
  s.finished();
  res.end("data: [DONE]\n\n");
}
