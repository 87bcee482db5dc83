import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { TOKENS_SUBSCRIPTION, type TokenEvent } from "./operations";

/**
 * The one GraphQL client over graphql-ws (subscriptions), beside gql-http.ts: a lazy
 * client for token streams, a handshake probe for authentication tests, and a collector
 * of a completion's token events.
 */

export function wsUrlOf(httpUrl: string): string {
  return httpUrl.replace(/^http/, "ws");
}

/**
 * A lazy graphql-ws client authenticated with `apiKey` (it connects on the first subscribe);
 * dispose() it when done. lazyCloseTimeout 0: the socket closes as soon as no subscription is
 * active. A longer timeout leaves a timer that dispose() does not clear, holding the process
 * (and jest) open that long; a subscribe that meets the closing socket reconnects (graphql-ws 6
 * retries a normal closure while a subscription waits).
 */
export function wsClient(httpUrl: string, apiKey: string): Client {
  return createClient({
    url: wsUrlOf(httpUrl),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    lazy: true,
    lazyCloseTimeout: 0,
    retryAttempts: 0,
  });
}

export type WsConnectOutcome = { outcome: "open"; client: Client } | { outcome: "closed"; code: number };

/** Opens a graphql-ws connection with these connection params: "open" on ack, or the close code. */
export function wsConnect(wsUrl: string, params: Record<string, unknown>): Promise<WsConnectOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: params,
      lazy: false,
      onNonLazyError: () => undefined,
      retryAttempts: 0,
      on: {
        connected: () => {
          if (!settled) {
            settled = true;
            resolve({ outcome: "open", client });
          }
        },
        closed: (event) => {
          if (!settled) {
            settled = true;
            resolve({ outcome: "closed", code: (event as { code: number }).code });
          }
        },
      },
    });
    client.on("error", () => undefined);
  });
}

function gqlErrors(errors: readonly { message: string }[]): Error {
  return Object.assign(new Error(errors.map((e) => e.message).join("; ")), { errors });
}

/**
 * Collects a completion's token events until the final one (done). Rejects with the
 * GraphQL errors when the subscription fails (e.g. NOT_FOUND, STREAM_EXPIRED), and when
 * the stream ends without its final event. `onEvent` sees each event as it arrives (TTFT).
 */
export function collectTokens(
  client: Client,
  completionId: string,
  fromIndex = 0,
  onEvent?: (e: TokenEvent, atMs: number) => void,
): Promise<TokenEvent[]> {
  return new Promise((resolve, reject) => {
    const events: TokenEvent[] = [];
    client.subscribe<{ completionTokens: TokenEvent }>(
      { query: TOKENS_SUBSCRIPTION, variables: { id: completionId, from: fromIndex } },
      {
        next: (msg) => {
          if (msg.errors?.length) {
            reject(gqlErrors(msg.errors));
            return;
          }
          const e = msg.data?.completionTokens;
          if (!e) return;
          events.push(e);
          onEvent?.(e, performance.now());
          // No dispose() here (nor on errors): the server completes the operation right after,
          // and a client-side complete racing it made graphql-ws release the socket twice (its
          // lock count fell to 0 while other subscriptions were live, so it closed the socket
          // and they ended early, without their final event).
          if (e.done) resolve(events);
        },
        error: (err) => reject(Array.isArray(err) ? gqlErrors(err) : err),
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
