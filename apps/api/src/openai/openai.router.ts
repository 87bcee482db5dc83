import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { DomainError } from "@lite/core";
import { bodyLimitBytes } from "../env";
import type { ApiServices } from "../services";
import { authenticateFirst } from "../http/http-auth";
import { createHandler } from "./openai.completions";
import { getModelHandler, listModelsHandler } from "./openai.models";
import { retrieveHandler } from "./openai.retrieve";
import { asDomainError, bodyParserError, bodyParserStatus, openAiError, sendOpenAiError } from "./openai.errors";

/**
 * The OpenAI-compatible REST API, mounted at /v1 on the API port. Every request is
 * authenticated before its body is read, with /graphql's throttles and client-error budget
 * (http-auth.ts), and its body is read with /graphql's limit; every refusal is in OpenAI's
 * error shape with GraphQL's status for the same error.
 */
export function openAiRouter(services: ApiServices): Router {
  const limit = bodyLimitBytes(services.env);
  const json = express.json({ limit });
  const router = express.Router();
  router.use(authenticateFirst(services, { resource: "openai", answer: (res, e) => sendOpenAiError(res, e) }));
  router.post("/completions", json, createHandler(services, "text"));
  router.post("/chat/completions", json, createHandler(services, "chat"));
  router.get("/chat/completions/:id", retrieveHandler(services));
  router.get("/models", listModelsHandler(services));
  router.get("/models/:id", getModelHandler(services));
  router.use((req: Request) => {
    throw new DomainError("NOT_FOUND", `no route ${req.method} ${req.baseUrl}${req.path}`);
  });
  router.use(errorHandler(services, limit));
  return router;
}

/** Whatever a /v1 handler threw, answered in OpenAI's shape (inside a started stream: as its last event). */
function errorHandler(services: ApiServices, limit: number) {
  return (thrown: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const requestId = String(res.locals.requestId);
    const parser = thrown instanceof DomainError ? null : bodyParserError(thrown as { type?: string }, limit);
    const error = parser ?? asDomainError(thrown, services.log, requestId);
    if (res.headersSent) {
      if (!res.writableEnded) res.end(`data: ${JSON.stringify(openAiError(error).body)}\n\n`);
      return;
    }
    sendOpenAiError(res, error, parser ? bodyParserStatus(parser) : undefined);
  };
}
