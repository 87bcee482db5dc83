import { GraphQLError } from "graphql";
import { HeaderMap, type ApolloServerPlugin, type HTTPGraphQLHead } from "@apollo/server";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";

/** Client errors Apollo answers 200 by default; here they are 400 like every other bad request. */
const PERSISTED_QUERY_CODES = new Set(["PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED"]);

/** A subscription over HTTP would run its root field as a query (no stream): refused up front. */
function subscriptionOverHttp(requestId: string): GraphQLError {
  const http: HTTPGraphQLHead = { status: 400, headers: new HeaderMap() };
  return new GraphQLError(
    "subscriptions are served over WebSocket only (graphql-transport-ws protocol, the graphql-ws library) at ws://<host>/graphql",
    { extensions: { code: "BAD_REQUEST", requestId, http } },
  );
}

/**
 * Per-operation bookkeeping: metrics by tenant and outcome, and the last guarantee of
 * the error contract: any masked INTERNAL_SERVER_ERROR answers HTTP 500 and carries the
 * request id (even one that escaped the resolver middleware); persisted-query errors are
 * 400; a subscription sent over HTTP is 400 pointing at WebSocket.
 */
export function operationPlugin(services: ApiServices): ApolloServerPlugin<ApiContext> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (operation?.operation === "subscription") throw subscriptionOverHttp(contextValue.requestId);
        },
        async willSendResponse({ response, contextValue: ctx, operation }) {
          const type = operation?.operation ?? "unknown";
          let outcome = "ok";
          if (response.body.kind === "single") {
            const errors = response.body.singleResult.errors ?? [];
            if (errors.length > 0) outcome = String(errors[0].extensions?.code ?? "ERROR");
            for (const e of errors) {
              if (PERSISTED_QUERY_CODES.has(String(e.extensions?.code))) response.http.status = 400;
              if (e.extensions?.code === "INTERNAL_SERVER_ERROR") {
                response.http.status = 500;
                if (!e.extensions.requestId) (e.extensions as Record<string, unknown>).requestId = ctx.requestId;
              }
            }
          }
          if (services.env.METRICS === "off") return;
          const tenant = ctx.principal.tenantId ? services.tenantLabels.label(ctx.principal.tenantId) : "-";
          services.metrics.graphqlOperations.inc({ tenant, type, outcome });
          services.metrics.graphqlDurationSeconds.observe({ type }, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}
