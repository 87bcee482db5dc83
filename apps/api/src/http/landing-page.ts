import type { Express } from "express";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";

/**
 * What a browser sees at `/` and at `GET /graphql` (Accept: text/html, no key): a plain
 * page, served from this process, saying what the API is and how to call it, with links to
 * the schema and the health endpoints. Apollo's own landing page (the Sandbox) loads from a
 * CDN and shows nothing on a machine without internet, so it is disabled (apollo.ts).
 * `/schema.graphql` is the served SDL: the public contract plus its documented extensions,
 * nothing about any tenant.
 */
export function mountLandingPage(app: Express, schema: GraphQLSchema): void {
  const sdl = `${printSchema(lexicographicSortSchema(schema))}\n`;
  app.get("/", (_req, res) => {
    res.type("html").send(LANDING_HTML);
  });
  app.get("/schema.graphql", (_req, res) => {
    res.type("text/plain; charset=utf-8").send(sdl);
  });
  // Before /graphql's authentication: a browser opening the endpoint gets the page, not a 401.
  app.get("/graphql", (req, res, next) => {
    const wantsHtml =
      req.accepts(["application/json", "application/graphql-response+json", "text/html"]) === "text/html";
    if (!wantsHtml || req.headers.authorization !== undefined || req.query.query !== undefined) return next();
    res.type("html").send(LANDING_HTML);
  });
}

const LANDING_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Lite LLM runtime</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}code,pre{background:#f4f4f4;border-radius:4px;padding:.1rem .3rem}pre{padding:.8rem;overflow:auto}</style>
</head>
<body>
<h1>Lite LLM runtime</h1>
<p>A multi-tenant Mixture-of-Experts inference API. This page is served by the API itself and needs no internet.</p>
<h2>Call it</h2>
<p>GraphQL over HTTP <code>POST /graphql</code> and over WebSocket (graphql-ws) on the same path, with an API key:</p>
<pre>curl -s http://HOST:PORT/graphql \\
  -H 'Authorization: Bearer YOUR_KEY' -H 'Content-Type: application/json' \\
  -d '{"query":"{ me { role tenant { id name } } }"}'</pre>
<p>Stream a completion: <code>mutation { createCompletion(input: {prompt: "Hello", maxTokens: 16}) { id } }</code>,
then subscribe to <code>completionTokens(id: …)</code> over WebSocket.</p>
<h2>Links</h2>
<ul>
<li><a href="/dashboard/">/dashboard</a>: the dashboard (log in with an ADMIN, TENANT or FINANCE key)</li>
<li><a href="/admin/queues">/admin/queues</a>: bull-board, the per-tenant queues (ADMIN key as the password)</li>
<li><a href="/schema.graphql">/schema.graphql</a>: the served schema (SDL)</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a>: liveness and readiness</li>
<li><code>/metrics</code>: Prometheus, with an ADMIN key</li>
</ul>
</body>
</html>
`;
