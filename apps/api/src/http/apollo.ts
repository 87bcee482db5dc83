import type http from "node:http";
import type { GraphQLSchema } from "graphql";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { formatError } from "../errors";
import { operationPlugin } from "./graphql-plugin";
import type { GraphqlWs } from "./graphql-ws";
import { createInputEdge, inputEdgePlugin } from "./input-edge";
import { limitParseOptions, limitPlugins, limitRules } from "./graphql-limits";

/**
 * Apollo over the served schema, started. Its stop() drains: HTTP connections get
 * SHUTDOWN_GRACE_MS to finish, then the WebSocket subscriptions are disposed. Stack traces
 * never reach clients; signals are the process's business (main.ts), not Apollo's.
 */
export async function startApollo(
  schema: GraphQLSchema,
  httpServer: http.Server,
  ws: Pick<GraphqlWs, "dispose">,
  services: ApiServices,
): Promise<ApolloServer<ApiContext>> {
  const apollo = new ApolloServer<ApiContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: true,
    validationRules: limitRules,
    parseOptions: limitParseOptions,
    allowBatchedHttpRequests: false,
    // No automatic persisted queries: nothing here uses them, and a cache that any client
    // fills with documents of its choosing is one more thing to bound. Such requests: 400.
    persistedQueries: false,
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: services.env.SHUTDOWN_GRACE_MS }),
      // The Sandbox loads from a CDN: offline it shows nothing. landing-page.ts serves a local page.
      ApolloServerPluginLandingPageDisabled(),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await ws.dispose();
            },
          };
        },
      },
      operationPlugin(services),
      ...limitPlugins,
      inputEdgePlugin(createInputEdge(services)),
    ],
  });
  await apollo.start();
  return apollo;
}
