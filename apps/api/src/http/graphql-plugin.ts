import type { ApolloServerPlugin } from "@apollo/server";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";

/**
 * Per-operation bookkeeping: metrics by tenant and outcome, and the last guarantee of
 * the error contract: any masked INTERNAL_SERVER_ERROR answers HTTP 500 and carries the
 * request id (even one that escaped the resolver middleware).
 */
export function operationPlugin(services: ApiServices): ApolloServerPlugin<ApiContext> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ response, contextValue: ctx, operation }) {
          const type = operation?.operation ?? "unknown";
          let outcome = "ok";
          if (response.body.kind === "single") {
            const errors = response.body.singleResult.errors ?? [];
            if (errors.length > 0) outcome = String(errors[0].extensions?.code ?? "ERROR");
            for (const e of errors) {
              if (e.extensions?.code === "INTERNAL_SERVER_ERROR") {
                response.http.status = 500;
                if (!e.extensions.requestId) (e.extensions as Record<string, unknown>).requestId = ctx.requestId;
              }
            }
          }
          services.metrics.graphqlOperations.inc({ tenant: ctx.principal.tenantId ?? "-", type, outcome });
          services.metrics.graphqlDurationSeconds.observe({ type }, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}
