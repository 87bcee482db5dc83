import type { Request, Response } from "express";
import { DomainError, isTerminalStatus } from "@lite/core";
import type { Principal } from "@lite/auth";
import * as completions from "@lite/completions";
import { tenantScope } from "../auth/access";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { orThrow } from "../tenant/tenancy.context";
import { modelNameOf } from "./model-names";
import { metaOf, openAiFinish, responseBody, usageOf } from "./openai.shapes";

/**
 * GET /v1/chat/completions/{id}: a completion the caller may see (ADMIN any, TENANT its own;
 * another tenant's answers 404 and the denial is audited, as GraphQL's `completion(id)`), in
 * the chat completion shape; a running one shows the text so far and `finish_reason: null`.
 */
export function retrieveHandler(services: ApiServices) {
  return async (req: Request, res: Response): Promise<void> => {
    const ctx: ApiContext = {
      services,
      principal: res.locals.principal as Principal,
      requestId: String(res.locals.requestId),
    };
    if (ctx.principal.role !== "ADMIN" && ctx.principal.role !== "TENANT") {
      throw new DomainError("FORBIDDEN", `role ${ctx.principal.role} may not read completions`, { reason: "ROLE" });
    }
    const row = await orThrow(
      ctx,
      await completions.findCompletion(services.db, String(req.params.id), tenantScope(ctx)),
    );
    const view = await completions.withLiveText(services.completions.streams, row);
    const meta = metaOf(view, await modelNameOf(services, view.model), false);
    const finish = isTerminalStatus(view.status) ? openAiFinish(view.finishReason, false) : null;
    const body = responseBody("chat", meta, view.text, finish, usageOf(view.promptTokens, view.outputTokens));
    res.json({ ...body, status: view.status });
  };
}
