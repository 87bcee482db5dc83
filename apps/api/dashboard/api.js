// GraphQL over HTTP (POST /graphql) and graphql-ws (the same path) with the API key the
// user logged in with. Nothing else is called: the API decides what each role may see.
import { createClient } from "./vendor/graphql-ws/client.js";

export class GqlError extends Error {
  constructor(errors, data) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.data = data;
    this.code = errors[0]?.extensions?.code;
  }
}

function wsUrl() {
  const u = new URL("/graphql", location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

export function makeApi(key) {
  let client;

  async function gql(query, variables = {}) {
    let r;
    try {
      r = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (e) {
      throw new GqlError([{ message: `the API did not answer (${e.message})`, extensions: { code: "NETWORK" } }]);
    }
    let body;
    try {
      body = await r.json();
    } catch {
      throw new GqlError([{ message: `HTTP ${r.status}`, extensions: { code: `HTTP_${r.status}` } }]);
    }
    if (body.errors?.length) throw new GqlError(body.errors, body.data);
    return body.data;
  }

  function ws() {
    client ??= createClient({
      url: wsUrl(),
      connectionParams: { authorization: `Bearer ${key}` },
      lazy: true,
      retryAttempts: 3,
    });
    return client;
  }

  /** Subscribes; returns the function that ends the subscription. */
  function subscribe(query, variables, sink) {
    return ws().subscribe(
      { query, variables },
      {
        next: (m) => (m.errors?.length ? sink.error(new GqlError(m.errors)) : sink.next(m.data)),
        error: (e) => {
          if (Array.isArray(e)) return sink.error(new GqlError(e));
          if (e instanceof Error) return sink.error(e);
          const code = e?.code;
          return sink.error(new GqlError([{ message: `connection closed (${code ?? "?"})`, extensions: { code } }]));
        },
        complete: () => sink.complete?.(),
      },
    );
  }

  function close() {
    client?.dispose();
    client = undefined;
  }

  return { gql, subscribe, close };
}
