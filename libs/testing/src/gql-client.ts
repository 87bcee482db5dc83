import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

/**
 * A small GraphQL client for end-to-end tests, benchmarks and the demo: HTTP requests
 * that keep the status and headers (429 Retry-After is part of the contract), and
 * graphql-ws subscriptions over `ws`.
 */

export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown>; path?: string[] }>;
}

export class GqlHttp {
  constructor(
    readonly url: string,
    readonly apiKey?: string,
  ) {}

  withKey(apiKey: string): GqlHttp {
    return new GqlHttp(this.url, apiKey);
  }

  async request<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<GqlResponse<T>> {
    const res = await fetch(this.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const text = await res.text();
    let body: { data?: T | null; errors?: GqlResponse["errors"] } = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { errors: [{ message: `non-JSON response (${res.status}): ${text.slice(0, 200)}` }] };
    }
    return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
  }

  /** Like request, but throws on any error; returns data. */
  async ok<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const r = await this.request<T>(query, variables);
    if (r.errors?.length || !r.data) throw new Error(`GraphQL error (${r.status}): ${JSON.stringify(r.errors)}`);
    return r.data;
  }
}

export function wsUrlOf(httpUrl: string): string {
  return httpUrl.replace(/^http/, "ws");
}

export function wsClient(httpUrl: string, apiKey: string): Client {
  return createClient({
    url: wsUrlOf(httpUrl),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    lazy: true,
    // Lazy mode closes the socket (code 1000) as soon as no subscription is active; a
    // subscribe racing that close is completed without its events. Keep the socket a while.
    lazyCloseTimeout: 30000,
    retryAttempts: 0,
  });
}

export interface TokenEvent {
  completionId: string;
  index: number;
  tokenId: number;
  text: string;
  done: boolean;
  finishReason: string | null;
}

export const TOKENS_SUBSCRIPTION = `subscription($id: ID!, $from: Int) {
  completionTokens(id: $id, fromIndex: $from) { completionId index tokenId text done finishReason }
}`;

/**
 * Collects a completion's token events until the final one (done). Rejects with the
 * GraphQL errors when the subscription fails (e.g. NOT_FOUND, STREAM_EXPIRED).
 * `onEvent` sees each event as it arrives (TTFT measurements).
 */
export function collectTokens(
  client: Client,
  completionId: string,
  fromIndex = 0,
  onEvent?: (e: TokenEvent, atMs: number) => void,
): Promise<TokenEvent[]> {
  return new Promise((resolve, reject) => {
    const events: TokenEvent[] = [];
    const dispose = client.subscribe<{ completionTokens: TokenEvent }>(
      { query: TOKENS_SUBSCRIPTION, variables: { id: completionId, from: fromIndex } },
      {
        next: (msg) => {
          if (msg.errors?.length) {
            dispose();
            reject(Object.assign(new Error(msg.errors.map((e) => e.message).join("; ")), { errors: msg.errors }));
            return;
          }
          const e = msg.data?.completionTokens;
          if (!e) return;
          events.push(e);
          onEvent?.(e, performance.now());
          if (e.done) {
            dispose();
            resolve(events);
          }
        },
        error: (err) =>
          reject(
            Array.isArray(err) ? Object.assign(new Error(err.map((e) => e.message).join("; ")), { errors: err }) : err,
          ),
        complete: () =>
          events.length > 0 && events[events.length - 1].done
            ? resolve(events)
            : reject(
                Object.assign(
                  new Error(`stream of ${completionId} ended after ${events.length} events without the final one`),
                  { events },
                ),
              ),
      },
    );
  });
}

export const CREATE_COMPLETION = `mutation($input: CompletionInput!) {
  createCompletion(input: $input) { id tenantId status mode tierSet degraded seed promptTokens createdAt }
}`;

export const COMPLETION_QUERY = `query($id: ID!) {
  completion(id: $id) { id tenantId status mode tierSet degraded seed promptTokens outputTokens text finishReason createdAt startedAt finishedAt }
}`;

export const CANCEL_COMPLETION = `mutation($id: ID!) { cancelCompletion(id: $id) { id status finishReason outputTokens text } }`;
