import type http from "node:http";
import {
  GraphQLError,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
} from "graphql";
import { WebSocketServer, type WebSocket } from "ws";
import { useServer } from "graphql-ws/use/ws";
import { newId } from "@lite/core";
import { parseAuthorization, type Invalidation, type Principal } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { recordAuthFailure } from "./graphql-context";
import { createInputEdge, type InputEdge } from "./input-edge";
import { limitParseOptions, limitRules } from "./graphql-limits";

export interface GraphqlWs {
  /** closes every subscription (Apollo's drain calls it) */
  dispose(): Promise<void>;
  /** stops closing sockets on key revocation or tenant suspension */
  stopWatchingKeys(): void;
  /** closes the WebSocket server */
  close(): void;
}

/** 4401 for an unknown or revoked key, 4403 for a forbidden one (suspended tenant). */
function closeRefused(socket: WebSocket, code: string): void {
  const forbidden = code === "FORBIDDEN";
  socket.close(forbidden ? 4403 : 4401, forbidden ? "Forbidden" : "Unauthorized");
}

/** What a client sees of an error: no `http` extension (that is for the HTTP transport). */
function forClient(e: GraphQLError): GraphQLError {
  const { http: _http, ...extensions } = e.extensions ?? {};
  return new GraphQLError(e.message, { nodes: e.nodes, extensions });
}

interface SubscribePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/**
 * One `subscribe` message → the operation to run, or errors for that operation only (the
 * socket stays open): a syntax error is GRAPHQL_PARSE_FAILED, a validation error
 * GRAPHQL_VALIDATION_FAILED, a refused argument BAD_USER_INPUT (the sanitising edge).
 */
function prepareOperation(
  schema: GraphQLSchema,
  edge: InputEdge,
  services: ApiServices,
  principal: Principal,
  payload: SubscribePayload,
): ExecutionArgs | readonly GraphQLError[] {
  const requestId = newId("request");
  let document: DocumentNode;
  try {
    document = parse(payload.query, limitParseOptions);
  } catch (e) {
    const message = e instanceof GraphQLError ? e.message : "the query could not be parsed";
    return [new GraphQLError(message, { extensions: { code: "GRAPHQL_PARSE_FAILED", requestId } })];
  }
  const invalid = validate(schema, document, [...specifiedRules, ...limitRules]);
  if (invalid.length > 0) {
    return invalid.map(
      (e) =>
        new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED", requestId } }),
    );
  }
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) {
    return [new GraphQLError("Unable to identify operation", { extensions: { code: "BAD_REQUEST", requestId } })];
  }
  const refused = edge(schema, document, operation, payload.variables ?? undefined, principal, requestId);
  if (refused) return [forClient(refused)];
  const contextValue: ApiContext = { services, principal, requestId };
  return {
    schema,
    document,
    operationName: payload.operationName,
    variableValues: payload.variables,
    contextValue,
  };
}

/**
 * GraphQL over WebSocket (graphql-ws) on /graphql: the key travels in the connection
 * parameters and is checked once at connect; live connections are remembered so that
 * revocation and suspension close them too.
 */
export function startGraphqlWs(httpServer: http.Server, schema: GraphQLSchema, services: ApiServices): GraphqlWs {
  const wsServer = new WebSocketServer({ server: httpServer, path: "/graphql" });
  const edge = createInputEdge(services);
  const sockets = new Map<WebSocket, { principal: Principal; secret: string }>();
  const unsubscribe = services.auth.onInvalidate((inv: Invalidation) => {
    for (const [socket, conn] of sockets) {
      const p = conn.principal;
      const hit =
        inv.kind === "all" || (inv.kind === "key" ? p.apiKeyId === inv.apiKeyId : p.tenantId === inv.tenantId);
      if (!hit) continue;
      void services.auth.authenticate(conn.secret).then(
        (r) => {
          if (!r.ok) closeRefused(socket, r.error.code);
        },
        () => undefined,
      );
    }
  });

  const cleanup = useServer<Record<string, unknown>, { principal?: Principal; requestId?: string }>(
    {
      schema,
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const secret = parseAuthorization(params.authorization ?? params.Authorization);
        const result = await services.auth.authenticate(secret);
        const socket = ctx.extra.socket;
        if (!result.ok) {
          await recordAuthFailure(services, result.error, secret, "auth.websocket", "graphql-ws");
          closeRefused(socket, result.error.code);
          return false;
        }
        ctx.extra.principal = result.value;
        sockets.set(socket, { principal: result.value, secret: secret as string });
        socket.once("close", () => sockets.delete(socket));
        return true;
      },
      onSubscribe: (ctx, _id, payload) =>
        prepareOperation(schema, edge, services, ctx.extra.principal as Principal, payload),
    },
    wsServer,
  );

  return {
    dispose: async () => {
      await cleanup.dispose();
    },
    stopWatchingKeys: unsubscribe,
    close: () => wsServer.close(),
  };
}
