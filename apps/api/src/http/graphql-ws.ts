import type http from "node:http";
import type { GraphQLSchema } from "graphql";
import { WebSocketServer, type WebSocket } from "ws";
import { useServer } from "graphql-ws/use/ws";
import { newId } from "@lite/core";
import { parseAuthorization, type Invalidation, type Principal } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { recordAuthFailure } from "./graphql-context";

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

/**
 * GraphQL over WebSocket (graphql-ws) on /graphql: the key travels in the connection
 * parameters and is checked once at connect; live connections are remembered so that
 * revocation and suspension close them too.
 */
export function startGraphqlWs(httpServer: http.Server, schema: GraphQLSchema, services: ApiServices): GraphqlWs {
  const wsServer = new WebSocketServer({ server: httpServer, path: "/graphql" });
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
      context: (ctx): ApiContext => ({
        services,
        principal: ctx.extra.principal as Principal,
        requestId: newId("request"),
      }),
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
