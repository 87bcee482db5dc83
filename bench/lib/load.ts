/** Load generators for the end-to-end benchmarks. */
import type { Client } from "graphql-ws";
import { CREATE_COMPLETION, collectTokens, type GqlHttp } from "@lite/testing";
import { sleep } from "./live-stack";

export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  mode: string;
  seed: string;
  temperature: number;
}

/**
 * Keeps `queued` completions of a tenant waiting at all times (a backlogged tenant):
 * every `everyMs` it counts the tenant's QUEUED completions and tops them up.
 */
export function keepBacklogged(http: GqlHttp, queued: number, make: (i: number) => CompletionRequest, everyMs = 250) {
  let stopped = false;
  let submitted = 0;
  let errors = 0;
  const loop = (async () => {
    while (!stopped) {
      const r = await http.request<{ completions: { nodes: Array<{ id: string }> } }>(
        `{ completions(first: 500, status: QUEUED) { nodes { id } } }`,
      );
      const have = r.data?.completions.nodes.length ?? queued;
      const missing = Math.max(0, queued - have);
      await Promise.all(
        Array.from({ length: missing }, async () => {
          const res = await http.request(CREATE_COMPLETION, { input: make(submitted++) });
          if (res.errors) errors++;
        }),
      );
      await sleep(everyMs);
    }
  })();
  return {
    get submitted() {
      return submitted;
    },
    get errors() {
      return errors;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export interface StreamedResult {
  /** ms from the createCompletion request to the first token event; Infinity if none arrived */
  ttftMs: number;
  tokens: number;
  startedAt: number;
  /** ms the createCompletion request took */
  createMs: number;
  error?: string;
}

/**
 * One completion: create it, stream it to the end (or until `signal`) over the tenant's
 * shared graphql-ws connection, time the first token.
 */
export async function streamOne(
  http: GqlHttp,
  ws: Client,
  req: CompletionRequest,
  signal?: AbortSignal,
): Promise<StreamedResult> {
  const startedAt = performance.now();
  const r = await http.request<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input: req });
  const createMs = performance.now() - startedAt;
  if (!r.data?.createCompletion)
    return { ttftMs: Infinity, tokens: 0, startedAt, createMs, error: `${r.status} ${r.errors?.[0]?.message}` };
  let first = Infinity;
  let tokens = 0;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onAbort = () => resolve();
      signal?.addEventListener("abort", onAbort, { once: true });
      collectTokens(ws, r.data!.createCompletion.id, 0, (e, at) => {
        if (e.done) return;
        if (first === Infinity) first = at - startedAt;
        tokens++;
      }).then(
        () => resolve(),
        (e) => reject(e),
      );
    });
  } catch (e) {
    return { ttftMs: first, tokens, startedAt, createMs, error: (e as Error).message };
  } finally {
    // A phase's lanes share one signal: a listener left per finished stream would pile up on it.
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
  return { ttftMs: first, tokens, startedAt, createMs };
}
