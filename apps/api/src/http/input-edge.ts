import {
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";
import { DomainError } from "@lite/core";
import type { Principal } from "@lite/auth";
import type { ApiContext } from "../context";
import type { ApiServices } from "../services";
import { toGraphQLError } from "../errors";
import { roleTable } from "../auth/access";
import { RESOLVERS } from "../schema";
import { sanitiseOperation } from "../common/sanitise-operation";

/**
 * The sanitising edge as the servers use it: over HTTP an Apollo plugin (didResolveOperation
 * runs after parsing and validation, before execution), over graphql-ws the same check from
 * onSubscribe. A refusal is BAD_USER_INPUT (HTTP 400) naming the argument's path.
 */
export type InputEdge = (
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  principal: Principal,
  requestId: string,
) => GraphQLError | null;

export function createInputEdge(services: Pick<ApiServices, "env">): InputEdge {
  const { table } = roleTable(RESOLVERS);
  const opts = { maxPromptBytes: services.env.MAX_PROMPT_BYTES, rolesOf: (c: string) => table.get(c) };
  return (schema, document, operation, variables, principal, requestId) => {
    const fragments: Record<string, FragmentDefinitionNode> = {};
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d;
    const refusal = sanitiseOperation({ schema, operation, fragments, variables, role: principal.role }, opts);
    if (!refusal) return null;
    return toGraphQLError(new DomainError("BAD_USER_INPUT", refusal.message, { field: refusal.field }), requestId);
  };
}

export function inputEdgePlugin(edge: InputEdge): ApolloServerPlugin<ApiContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          if (!operation) return;
          const refused = edge(
            schema,
            document,
            operation,
            request.variables,
            contextValue.principal,
            contextValue.requestId,
          );
          if (refused) throw refused;
        },
      };
    },
  };
}
