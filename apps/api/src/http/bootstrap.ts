import { sleep, withRetry } from "@lite/core";
import { ensureAdminKey } from "@lite/auth";
import { ensureDefaultPriceBook } from "@lite/billing";
import type { ApiServices } from "../services";
import { registerModelsFromDir } from "@lite/manifest";
import { openConnections } from "@lite/db";

/** Between two start-up attempts while PostgreSQL or Redis is not there yet. */
export const BOOTSTRAP_RETRY_MS = 2000;

/** Start-up work: the pool's connections, the admin key, the default price book, the models of MODEL_DIR. */
async function bootstrap(s: ApiServices): Promise<void> {
  await openConnections(s.db, s.env.DATABASE_POOL_OPEN);
  if (s.env.ADMIN_API_KEY) {
    const admin = await ensureAdminKey(s.db, s.env.ADMIN_API_KEY);
    if (admin.created) {
      await s.audit.record({
        actor: "system",
        action: "apikey.create",
        resource: `apikey:${admin.apiKeyId}`,
        decision: "OK",
        reason: "bootstrap ADMIN_API_KEY",
      });
    }
    if (admin.revoked) s.log.warn({ apiKeyId: admin.apiKeyId }, "ADMIN_API_KEY names a revoked key: it stays revoked");
  }
  await ensureDefaultPriceBook(s.db);
  await registerModelsFromDir(s.db, s.audit, {
    modelDir: s.env.MODEL_DIR,
    defaultModel: s.env.DEFAULT_MODEL,
    publicKey: s.env.MODEL_PUBLIC_KEY,
    log: s.log,
  });
}

export interface Bootstrap {
  /** true once start-up work has succeeded and the authenticator and audit writer run */
  ready(): boolean;
  /** no further attempt (shutdown); an attempt under way finishes on its own */
  stop(): void;
}

/**
 * Runs start-up work once and waits for it; when PostgreSQL or Redis is unreachable the
 * server still starts (answering /readyz 503) and the work is retried in the background
 * every BOOTSTRAP_RETRY_MS until it succeeds or the server stops.
 */
export async function startBootstrap(services: ApiServices): Promise<Bootstrap> {
  const stopped = new AbortController();
  let ready = false;
  const attempt = async () => {
    await bootstrap(services);
    await services.auth.start();
    services.auditWriter.start();
    ready = true;
    services.log.info("api bootstrapped");
  };
  const failed = (e: unknown) => {
    if (stopped.signal.aborted) return;
    services.log.error({ err: e }, "start-up work failed (PostgreSQL or Redis unreachable?); retrying in 2 s");
  };
  try {
    await attempt();
  } catch (e) {
    failed(e);
    const retry = { delayMs: () => BOOTSTRAP_RETRY_MS, jitter: false, signal: stopped.signal, onError: failed };
    void sleep(BOOTSTRAP_RETRY_MS, { signal: stopped.signal })
      .then(() => (stopped.signal.aborted ? undefined : withRetry(attempt, retry)))
      .catch(() => undefined);
  }
  return { ready: () => ready, stop: () => stopped.abort() };
}
