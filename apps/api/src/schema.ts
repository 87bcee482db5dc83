import "reflect-metadata";
import type { GraphQLSchema } from "graphql";
import { buildSchema, type MiddlewareFn } from "type-graphql";
import type { ApiContext } from "./context";
import { mapResolverError } from "./errors";
import { roleTable, type ResolverClass } from "./auth/access";
import { BigIntScalar, DateTimeScalar } from "./common/scalars";
import { MeResolver } from "./auth/me.resolver";
import { CatalogResolver, ModelFieldsResolver } from "./catalog/catalog.resolver";
import { TenantFieldsResolver, TenantResolver } from "./tenant/tenant.resolver";
import { TenantQueueResolver } from "./tenant/tenant-queue.resolver";
import { ApiKeyResolver } from "./api-key/api-key.resolver";
import { BillingResolver } from "./billing/billing.resolver";
import { AuditResolver } from "./audit/audit.resolver";
import { UsageResolver } from "./usage/usage.resolver";
import { MetricsResolver } from "./metrics/metrics.resolver";
import { CompletionResolver } from "./completion/completion.resolver";

/** Every resolver class of the API: adding one is one line here. */
export const RESOLVERS: [ResolverClass, ...ResolverClass[]] = [
  MeResolver,
  CatalogResolver,
  ModelFieldsResolver,
  TenantResolver,
  TenantFieldsResolver,
  TenantQueueResolver,
  ApiKeyResolver,
  BillingResolver,
  AuditResolver,
  UsageResolver,
  MetricsResolver,
  CompletionResolver,
];

/** Maps whatever a resolver throws through errors.ts (one place for codes and statuses). */
const mapErrors: MiddlewareFn<ApiContext> = async ({ context }, next) => {
  try {
    return await next();
  } catch (e) {
    throw mapResolverError(e, context?.requestId ?? "unknown", context?.services?.log);
  }
};

/**
 * type-graphql requires a PubSub whenever the schema has subscriptions, even though ours
 * all use `subscribe` functions (Redis Streams, read from an index), never topics.
 */
const noTopicsPubSub = {
  publish(): void {
    throw new Error("subscriptions here use subscribe functions, not type-graphql topics");
  },
  subscribe(): AsyncIterable<unknown> {
    throw new Error("subscriptions here use subscribe functions, not type-graphql topics");
  },
};

let cached: GraphQLSchema | undefined;

/** The served schema (a superset of the contract). Refuses to build with an unguarded root field. */
export async function buildApiSchema(): Promise<GraphQLSchema> {
  if (cached) return cached;
  const schema = await buildSchema({
    resolvers: RESOLVERS,
    scalarsMap: [
      { type: Date, scalar: DateTimeScalar },
      { type: BigInt, scalar: BigIntScalar },
    ],
    globalMiddlewares: [mapErrors],
    validate: false,
    pubSub: noTopicsPubSub,
    emitSchemaFile: false,
  });
  const { unguarded } = roleTable(RESOLVERS);
  if (unguarded.length > 0) throw new Error(`root fields without @Allow: ${unguarded.join(", ")}`);
  cached = schema;
  return schema;
}
