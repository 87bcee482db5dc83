import { GraphQLError, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema } from "graphql";
import { limitParseOptions, limitRules } from "./graphql-limits";

/**
 * A `subscribe` document parsed and validated (the token limit, graphql-js' rules and the
 * GraphQL limits), or why not. Both depend on the document's text and the schema only (the
 * limits take no request context), so one answer serves every operation sending that text:
 * a client subscribing to one completion after another, or a flood of the same subscribe,
 * costs one parse and one validation, as Apollo's document store gives HTTP requests.
 */
export type PreparedDocument =
  | { ok: true; document: DocumentNode }
  | { ok: false; code: "GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED"; errors: readonly DocumentError[] };

/** A parse or validation error as it is reported (message and where), without a request id. */
export interface DocumentError {
  message: string;
  nodes?: GraphQLError["nodes"];
}

/** Documents kept per schema (least recently used dropped first). */
export const DOCUMENTS_MAX = 1000;
/** Longer texts are prepared every time, never kept (at most DOCUMENTS_MAX × this many characters held). */
export const DOCUMENT_MAX_CHARS = 16 * 1024;

const caches = new WeakMap<GraphQLSchema, Map<string, PreparedDocument>>();

/** The prepared document of `query` against `schema`, from the cache when it was prepared before. */
export function preparedDocument(schema: GraphQLSchema, query: string): PreparedDocument {
  let cache = caches.get(schema);
  if (!cache) {
    cache = new Map();
    caches.set(schema, cache);
  }
  const hit = cache.get(query);
  if (hit) {
    cache.delete(query); // most recently used last
    cache.set(query, hit);
    return hit;
  }
  const prepared = prepare(schema, query);
  if (query.length <= DOCUMENT_MAX_CHARS) {
    if (cache.size >= DOCUMENTS_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(query, prepared);
  }
  return prepared;
}

function prepare(schema: GraphQLSchema, query: string): PreparedDocument {
  let document: DocumentNode;
  try {
    document = parse(query, limitParseOptions);
  } catch (e) {
    const message = e instanceof GraphQLError ? e.message : "the query could not be parsed";
    return { ok: false, code: "GRAPHQL_PARSE_FAILED", errors: [{ message }] };
  }
  const invalid = validate(schema, document, [...specifiedRules, ...limitRules]);
  if (invalid.length > 0) {
    return {
      ok: false,
      code: "GRAPHQL_VALIDATION_FAILED",
      errors: invalid.map((e) => ({ message: e.message, nodes: e.nodes })),
    };
  }
  return { ok: true, document };
}
