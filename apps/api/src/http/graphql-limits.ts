import type { ValidationRule } from "graphql";
import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import type { ApiContext } from "../context";

/**
 * Per-request GraphQL limits (README "GraphQL limits"), enforced by graphql-armor before any
 * resolver runs: a document over the token limit fails to parse (400 GRAPHQL_PARSE_FAILED),
 * one over depth, aliases, directives or cost fails validation (400
 * GRAPHQL_VALIDATION_FAILED). The same limits hold for every role and both transports:
 * graphql-armor builds its rules once from a static configuration (no request context), and
 * the legitimate operations of every role fit well within them.
 */
export const GRAPHQL_LIMITS = {
  /** lexical tokens of one document; also bounds the parser's recursion */
  maxTokens: 2000,
  /** selection depth, fragments counted (introspection's `__schema` exempt) */
  maxDepth: 8,
  /** aliased fields in one document */
  maxAliases: 30,
  /** directives in one document */
  maxDirectives: 50,
  /**
   * graphql-armor's cost: 2 per object field, 1 per scalar, × 1.5 per level of depth, × an
   * inline `first`; an admin's 500 tenants with their quota, tiers and keys is about 31,000
   */
  maxCost: 50000,
} as const;

const armor = new ApolloArmor({
  // graphql-armor's Apollo token plugin throws from parsingDidStart, which Apollo answers
  // 500; graphql-js's own parse option (what graphql-armor documents for graphql-js) is
  // used instead: `parseOptions` below and parse() in graphql-ws.
  maxTokens: { enabled: false },
  maxDepth: { n: GRAPHQL_LIMITS.maxDepth, flattenFragments: false },
  maxAliases: { n: GRAPHQL_LIMITS.maxAliases },
  maxDirectives: { n: GRAPHQL_LIMITS.maxDirectives },
  costLimit: { maxCost: GRAPHQL_LIMITS.maxCost },
  // "Did you mean …" would let anyone map the schema's fields through errors.
  blockFieldSuggestion: { enabled: true },
});
const protection = armor.protect();

/** Validation rules (depth, aliases, directives, cost) for Apollo and graphql-ws alike. */
export const limitRules: ValidationRule[] = protection.validationRules;

/** graphql-js parse options: the token limit (a longer document fails to parse, 400). */
export const limitParseOptions = { maxTokens: GRAPHQL_LIMITS.maxTokens } as const;

/** Apollo plugins: no field suggestions in errors. */
export const limitPlugins: ApolloServerPlugin<ApiContext>[] = protection.plugins as ApolloServerPlugin<ApiContext>[];
