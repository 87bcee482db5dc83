import { GraphQLError, getOperationAST, type ExecutionArgs, type GraphQLSchema } from "graphql";
import { DomainError, newId } from "@lite/core";
import type { Principal } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { toGraphQLError } from "../errors";
import type { InputEdge } from "./input-edge";
import { preparedDocument } from "./ws-documents";

/** What a client sees of an error: no `http` extension (that is for the HTTP transport). */
export function forClient(e: GraphQLError): GraphQLError {
  const { http: _http, ...extensions } = e.extensions ?? {};
  return new GraphQLError(e.message, { nodes: e.nodes, extensions });
}

export interface SubscribePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/**
 * One `subscribe` message → the operation to run, or errors for that operation only (the
 * socket stays open): a syntax error is GRAPHQL_PARSE_FAILED, a validation error
 * GRAPHQL_VALIDATION_FAILED, a refused argument BAD_USER_INPUT (the sanitising edge).
 */
export function prepareOperation(
  schema: GraphQLSchema,
  edge: InputEdge,
  services: ApiServices,
  principal: Principal,
  payload: SubscribePayload,
  connection?: object,
): ExecutionArgs | readonly GraphQLError[] {
  const requestId = newId("request");
  const prepared = preparedDocument(schema, payload.query);
  if (!prepared.ok) {
    return prepared.errors.map(
      (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: prepared.code, requestId } }),
    );
  }
  const { document } = prepared;
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) {
    return [new GraphQLError("Unable to identify operation", { extensions: { code: "BAD_REQUEST", requestId } })];
  }
  const refused = edge(schema, document, operation, payload.variables ?? undefined, principal, requestId);
  if (refused) return [forClient(refused)];
  const contextValue: ApiContext = { services, principal, requestId, connection };
  return {
    schema,
    document,
    operationName: payload.operationName,
    variableValues: payload.variables,
    contextValue,
  };
}

/**
 * A refusal answered to a flood is built once and shared: a client sending thousands of
 * over-limit `subscribe` frames must not cost the API three stack traces and a fresh request
 * id per frame (it has no request to correlate: nothing ran). Keyed by its limit and wait.
 */
const refusals = new Map<string, readonly GraphQLError[]>();
function sharedRefusal(key: string, build: () => DomainError): readonly GraphQLError[] {
  let errors = refusals.get(key);
  if (!errors) {
    const error = build();
    const { requestId: _none, ...extensions } = forClient(toGraphQLError(error, "")).extensions;
    errors = Object.freeze([new GraphQLError(error.message, { extensions })]);
    if (refusals.size < 1000) refusals.set(key, errors);
  }
  return errors;
}

/** The error for a `subscribe` over WS_MAX_SUBSCRIPTIONS_PER_CONNECTION (the socket stays open). */
export function tooManySubscriptions(max: number): readonly GraphQLError[] {
  return sharedRefusal(
    `max ${max}`,
    () =>
      new DomainError("QUOTA_EXCEEDED", `at most ${max} operations at once on one WebSocket`, {
        reason: "SUBSCRIPTIONS_PER_CONNECTION",
        retryAfterMs: 1000,
      }),
  );
}

/** The error for a `subscribe` over WS_SUBSCRIBES_PER_SECOND (the socket stays open, until too many). */
export function subscribingTooFast(retryAfterMs: number): readonly GraphQLError[] {
  return sharedRefusal(
    `wait ${retryAfterMs}`,
    () =>
      new DomainError("RATE_LIMITED", "operations are started too fast on this tenant's WebSockets", {
        reason: "SUBSCRIBES_PER_SECOND",
        retryAfterMs,
        retryable: true,
      }),
  );
}
