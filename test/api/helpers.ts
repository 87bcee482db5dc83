/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers in tests are untyped JSON */
import * as path from "node:path";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TestEnv } from "@lite/testing";
import { startApiServer, type RunningApiServer } from "../../apps/api/src/server";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";

export interface GqlResult<T = Record<string, any>> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, any>; path?: string[] }>;
}

/** A real API server on a free port, over the test file's own database and Redis prefix. */
export function startTestApi(env: TestEnv, extra: Record<string, string | undefined> = {}): Promise<RunningApiServer> {
  return startApiServer({
    port: 0,
    host: "127.0.0.1",
    env: {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: env.redisPrefix,
      ADMIN_API_KEY: ADMIN_KEY,
      MODEL_DIR: path.join(process.env.TEST_RUN_DIR ?? "/tmp", "no-models-here"),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
      ...extra,
    },
  });
}

export async function gql<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: { data?: T | null; errors?: GqlResult["errors"] };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 300)}`);
  }
  return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
}

/** Throws unless the answer has data and no errors. */
export async function gqlOk<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  const r = await gql<T>(url, key, query, variables);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL error (${r.status}): ${JSON.stringify(r.errors)}`);
  return r.data;
}

export const codeOf = (r: GqlResult) => r.errors?.[0]?.extensions?.code as string | undefined;

/** Opens a graphql-ws connection; resolves "open" on ack, or the close code. */
export function wsConnect(
  wsUrl: string,
  params: Record<string, unknown>,
): Promise<{ outcome: "open"; client: Client } | { outcome: "closed"; code: number }> {
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

/** Polls until fn returns true or the deadline passes; returns the elapsed ms. */
export async function waitFor(fn: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 20): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await fn()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
