import path from "node:path";
import fs from "node:fs";
import express, { type Express } from "express";

export const DASHBOARD_PATH = "/dashboard";

/** The dashboard's files: plain ES modules, served as they are (no build step, no CDN). */
const DASHBOARD_DIR = path.resolve(__dirname, "..", "..", "dashboard");

/**
 * graphql-ws's browser client (its ESM build has no imports outside its own dist folder):
 * served from node_modules, so the page works offline with the exact pinned version.
 */
const GRAPHQL_WS_DIST = path.dirname(require.resolve("graphql-ws"));
const GRAPHQL_WS_FILES = fs
  .readdirSync(GRAPHQL_WS_DIST)
  .filter((f) => f === "client.js" || /^common-[\w-]+\.js$/.test(f));

/**
 * Only this origin's scripts, styles and connections (HTTP and WebSocket to the same port).
 * The API key the page holds lives in sessionStorage; a strict policy keeps injected script
 * from reading it.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * GET /dashboard: the operator and tenant dashboard, a single page that logs in with an API
 * key (kept in the browser's sessionStorage only) and reads everything through /graphql and
 * graphql-ws with that key, so a role sees exactly what the API lets it see. The files carry
 * no data: nothing here needs authentication.
 */
export function mountDashboard(app: Express): void {
  const headers = (res: express.Response) => {
    res.setHeader("content-security-policy", CSP);
    res.setHeader("x-content-type-options", "nosniff");
    res.setHeader("referrer-policy", "no-referrer");
    res.setHeader("cache-control", "no-cache");
  };
  app.get(DASHBOARD_PATH, (req, res) => {
    // Relative module URLs resolve against /dashboard/.
    if (!req.originalUrl.split("?")[0].endsWith("/")) return res.redirect(301, `${DASHBOARD_PATH}/`);
    headers(res);
    res.sendFile(path.join(DASHBOARD_DIR, "index.html"));
  });
  app.get(`${DASHBOARD_PATH}/vendor/graphql-ws/:file`, (req, res, next) => {
    if (!GRAPHQL_WS_FILES.includes(req.params.file)) return next();
    headers(res);
    res.type("text/javascript").sendFile(path.join(GRAPHQL_WS_DIST, req.params.file));
  });
  app.use(
    DASHBOARD_PATH,
    express.static(DASHBOARD_DIR, {
      index: "index.html",
      dotfiles: "ignore",
      redirect: false,
      setHeaders: (res) => headers(res as express.Response),
    }),
  );
}
