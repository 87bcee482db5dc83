import type { Principal } from "@lite/auth";
import type { Context } from "@lite/tracing";
import type { ApiServices } from "./services";

/** What every resolver receives (HTTP and WebSocket alike). */
export interface ApiContext {
  services: ApiServices;
  principal: Principal;
  requestId: string;
  /** the HTTP request's `Idempotency-Key` header, when it has one (graphql-ws has no headers) */
  idempotencyKeyHeader?: string;
  /** the WebSocket an operation arrived on (graphql-ws only): per-connection limits key on it */
  connection?: object;
  /** the HTTP request's span context (http/trace-requests.ts): the parent of the spans its work starts */
  trace?: Context;
}
