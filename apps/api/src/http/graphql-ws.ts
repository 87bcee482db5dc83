import type http from "node:http";
import type { ExecutionArgs, GraphQLError, GraphQLSchema } from "graphql";
import type { Context } from "graphql-ws";
import type { Extra } from "graphql-ws/use/ws";
import { WebSocketServer, type WebSocket } from "ws";
import { useServer } from "graphql-ws/use/ws";
import { parseAuthorization, type Invalidation, type Principal } from "@lite/auth";
import type { ApiServices } from "../services";
import { bodyLimitBytes } from "../env";
import { sourceOf } from "./graphql-context";
import { authThrottleOf } from "./auth-throttle";
import { createInputEdge } from "./input-edge";
import { prepareOperation, subscribingTooFast, tooManySubscriptions, type SubscribePayload } from "./ws-operation";
import { ConnectionCounts } from "./ws-connections";
import { RateBudget } from "./rate-budget";

export interface GraphqlWs {
  /** closes every subscription (Apollo's drain calls it) */
  dispose(): Promise<void>;
  /** stops closing sockets on key revocation or tenant suspension */
  stopWatchingKeys(): void;
  /** closes the WebSocket server */
  close(): void;
}

/** 4401 for an unknown or revoked key, 4403 for a forbidden one (suspended tenant). */
function closeRefused(socket: WebSocket, code: string): void {
  const forbidden = code === "FORBIDDEN";
  socket.close(forbidden ? 4403 : 4401, forbidden ? "Forbidden" : "Unauthorized");
}

/** Over WS_MAX_CONNECTIONS_PER_KEY or _PER_TENANT: a terminal code graphql-ws clients do not retry. */
const TOO_MANY_CONNECTIONS = 4429;
/**
 * Closes a socket for abuse and stops reading it: the frames it has already sent (a flood
 * arrives as one burst of thousands) are dropped unparsed instead of each being answered,
 * and what is still in the network is never read.
 */
function shut(socket: WebSocket, reason: string, services: ApiServices): void {
  socket.removeAllListeners("message");
  socket.on("message", () => services.metrics.wsFramesDropped.inc());
  socket.close(TOO_MANY_CONNECTIONS, reason);
  // Nor is more read from the network: the client's reply to the close frame included, so
  // the socket is cut once the close frame has had a moment to leave.
  socket.pause();
  setTimeout(() => socket.terminate(), SHUT_GRACE_MS).unref();
}
const SHUT_GRACE_MS = 1000;

/**
 * A connection refused for abuse is closed after REFUSAL_TARPIT_MS (as HTTP's 429s): a
 * client that reconnects at once gets one refusal per connection per tarpit, not hundreds a
 * second of handshakes and lookups.
 */
function tarpit(services: ApiServices): Promise<void> {
  const ms = services.env.REFUSAL_TARPIT_MS;
  return ms > 0 ? new Promise((r) => setTimeout(r, ms).unref()) : Promise.resolve();
}

/** The authentication lookup failed (PostgreSQL or Redis away): the standard "try again later". */
const TRY_AGAIN_LATER = 1013;

/**
 * GraphQL over WebSocket (graphql-ws) on /graphql, with the limits of README "WebSocket
 * limits": frames up to the HTTP body limit (a larger one closes the socket with 1009 before
 * it is read, key or no key), connection_init within WS_CONNECTION_INIT_TIMEOUT_MS (4408),
 * connections per key and per tenant (4429), operations per connection (QUOTA_EXCEEDED for
 * that operation). The key travels in the connection parameters and is checked once at
 * connect; live connections are remembered so that revocation and suspension close them.
 */
export function startGraphqlWs(httpServer: http.Server, schema: GraphQLSchema, services: ApiServices): GraphqlWs {
  const { env } = services;
  const wsServer = new WebSocketServer({
    server: httpServer,
    path: "/graphql",
    maxPayload: bodyLimitBytes(env),
    // One message per socket per turn of the event loop: a burst of thousands of frames read
    // in one chunk is handled between other clients' requests instead of ahead of all of
    // them (clients send few messages; tokens flow the other way).
    allowSynchronousEvents: false,
  });
  const edge = createInputEdge(services);
  const throttle = authThrottleOf(services);
  const counts = new ConnectionCounts(env.WS_MAX_CONNECTIONS_PER_KEY, env.WS_MAX_CONNECTIONS_PER_TENANT);
  const budget = new RateBudget(
    env.WS_SUBSCRIBES_PER_SECOND,
    env.WS_SUBSCRIBE_BURST,
    () => services.clock.nowMs(),
    env.WS_SUBSCRIBE_BURST_COOLDOWN_SECONDS * 1000,
  );
  const sockets = new Map<WebSocket, { principal: Principal; secret: string }>();
  const unsubscribe = closeOnInvalidation(services, sockets);

  const cleanup = useServer<Record<string, unknown>, WsFields>(
    {
      schema,
      connectionInitWaitTimeout: env.WS_CONNECTION_INIT_TIMEOUT_MS,
      onConnect: (ctx) => connect(ctx, services, throttle, counts, sockets),
      onSubscribe: (ctx, _id, payload) => subscribe(ctx, payload, schema, edge, services, budget),
    },
    wsServer,
  );
  // ws closes a socket whose frame is over maxPayload (1009) or malformed by itself; graphql-ws
  // would also print the error's stack to stderr for each one, which a client could flood.
  wsServer.on("connection", (socket) => {
    socket.removeAllListeners("error");
    socket.on("error", (err) => {
      services.log.debug({ err: err.message }, "WebSocket closed on a protocol error");
      // ws has sent its close frame (1009 for a frame over maxPayload) and, on the next
      // tick, would read and discard the rest of the frame: up to 100 MB an attacker sends
      // again and again. Nothing more is read; the socket is cut after the grace.
      process.nextTick(() => socket.pause());
      setTimeout(() => socket.terminate(), SHUT_GRACE_MS).unref();
    });
  });

  return {
    dispose: async () => {
      await cleanup.dispose();
    },
    stopWatchingKeys: unsubscribe,
    close: () => wsServer.close(),
  };
}

// A type alias (not an interface), so that it satisfies graphql-ws' Record<PropertyKey, unknown>.
type WsFields = { principal?: Principal; refusedInARow?: number };
type WsContext = Context<Record<string, unknown>, Extra & Partial<WsFields>>;
type Sockets = Map<WebSocket, { principal: Principal; secret: string }>;

/** Revocation and suspension close the live sockets of the keys they hit. */
function closeOnInvalidation(services: ApiServices, sockets: Sockets): () => void {
  return services.auth.onInvalidate((inv: Invalidation) => {
    for (const [socket, conn] of sockets) {
      const p = conn.principal;
      const hit =
        inv.kind === "all" || (inv.kind === "key" ? p.apiKeyId === inv.apiKeyId : p.tenantId === inv.tenantId);
      if (!hit) continue;
      void services.auth.authenticate(conn.secret).then(
        (r) => {
          if (!r.ok) closeRefused(socket, r.error.code);
        },
        () => undefined,
      );
    }
  });
}

/** connection_init: the key (throttled per source), then the connection counts. */
async function connect(
  ctx: WsContext,
  services: ApiServices,
  throttle: ReturnType<typeof authThrottleOf>,
  counts: ConnectionCounts,
  sockets: Sockets,
): Promise<boolean> {
  const params = ctx.connectionParams ?? {};
  const secret = parseAuthorization(params.authorization ?? params.Authorization);
  const socket = ctx.extra.socket;
  let result;
  try {
    const audit = { action: "auth.websocket", resource: "graphql-ws" };
    result = await throttle.authenticate(sourceOf(ctx.extra.request), secret, audit);
  } catch (e) {
    services.log.error({ err: e }, "authentication lookup failed (graphql-ws)");
    socket.close(TRY_AGAIN_LATER, "Try again later");
    return false;
  }
  if (!result.ok) {
    if (result.error.code === "RATE_LIMITED") {
      services.metrics.wsRefusals.inc({ reason: "AUTH_FAILURES_PER_SOURCE" });
      await tarpit(services);
      shut(socket, "Too many failed authentications", services);
    } else closeRefused(socket, result.error.code);
    return false;
  }
  const principal = result.value;
  if (!counts.admit(principal)) {
    services.metrics.wsRefusals.inc({ reason: "CONNECTIONS" });
    await tarpit(services);
    shut(socket, "Too many connections", services);
    return false;
  }
  ctx.extra.principal = principal;
  sockets.set(socket, { principal, secret: secret as string });
  socket.once("close", () => {
    sockets.delete(socket);
    counts.release(principal);
  });
  return true;
}

/** One `subscribe`: the per-connection cap and the tenant's start rate, then the operation. */
function subscribe(
  ctx: WsContext,
  payload: SubscribePayload,
  schema: GraphQLSchema,
  edge: ReturnType<typeof createInputEdge>,
  services: ApiServices,
  budget: RateBudget,
): ExecutionArgs | readonly GraphQLError[] {
  const { env } = services;
  const principal = ctx.extra.principal as Principal;
  // ctx.subscriptions already holds this operation's slot.
  let refusal: readonly GraphQLError[] | null = null;
  if (Object.keys(ctx.subscriptions).length > env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION) {
    refusal = tooManySubscriptions(env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION);
    services.metrics.wsRefusals.inc({ reason: "SUBSCRIPTIONS_PER_CONNECTION" });
  } else {
    const waitMs = budget.take(principal);
    if (waitMs > 0) {
      refusal = subscribingTooFast(waitMs);
      services.metrics.wsRefusals.inc({ reason: "SUBSCRIBES_PER_SECOND" });
    }
  }
  if (!refusal) {
    ctx.extra.refusedInARow = 0;
    return prepareOperation(schema, edge, services, principal, payload, ctx.extra.socket);
  }
  // A client that keeps sending past its limits is closed rather than answered forever.
  ctx.extra.refusedInARow = (ctx.extra.refusedInARow ?? 0) + 1;
  if (ctx.extra.refusedInARow > env.WS_SUBSCRIBE_BURST) shut(ctx.extra.socket, "Too many refused operations", services);
  return refusal;
}
