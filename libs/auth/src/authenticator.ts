import type { Logger } from "pino";
import { DomainError, err, ok, systemClock, type Clock, type Result } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { duplicateSubscriber, type Redis, type RedisKeys } from "@lite/redis";
import { constantTimeEqual, hashApiKey } from "./api-key";
import type { Principal } from "./principal";

/**
 * API key → principal, cached in-process.
 *
 * 1. Look the SHA-256 of the presented secret up in the cache, else in PostgreSQL by its
 *    unique hash (the secret itself is never stored or compared).
 * 2. Revoked key → UNAUTHENTICATED; key of a suspended tenant → FORBIDDEN TENANT_SUSPENDED.
 * 3. Revocation and suspension publish an invalidation on Redis pub/sub; every process
 *    drops the matching entries at once (well within a second). A generation counter
 *    keeps a lookup that raced an invalidation from re-caching the stale row, and a
 *    reconnect of the subscriber (messages may have been missed) clears the whole cache.
 *    The TTL is only a safety net.
 * 4. lastUsedAt is written at most once per key per `lastUsedThrottleMs` per process.
 * 5. Concurrent requests with a key that is not cached (first use, or its entry just
 *    expired) share one lookup: a client's burst of requests is one PostgreSQL query, not
 *    one per request (16 at once each needing a pooled connection: the pool grew by 8
 *    connections, a SCRAM exchange and a backend fork each, and stalled the API for
 *    ~100 ms). A request that arrives after an invalidation never joins a lookup that
 *    began before it.
 */
export type Invalidation = { kind: "key"; apiKeyId: string } | { kind: "tenant"; tenantId: string } | { kind: "all" };

interface CacheEntry {
  hash: string;
  principal: Principal;
  revoked: boolean;
  suspended: boolean;
  expiresAtMs: number;
}

export interface AuthenticatorOptions {
  db: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  clock?: Clock;
  log?: Logger;
  /** positive cache lifetime, ms (default 60 000) */
  cacheTtlMs?: number;
  /** minimum interval between lastUsedAt writes per key, ms (default 60 000) */
  lastUsedThrottleMs?: number;
  /** bound on cached keys (default 100 000) */
  maxEntries?: number;
}

export class Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly lastUsedWrites = new Map<string, number>();
  private readonly listeners = new Set<(inv: Invalidation) => void>();
  private readonly clock: Clock;
  private readonly channel: string;
  private subscriber: Redis | null = null;
  private generation = 0;
  /** lookups in flight by key hash, with the generation they began in */
  private readonly lookups = new Map<string, { generation: number; entry: Promise<CacheEntry | null> }>();

  constructor(private readonly opts: AuthenticatorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.channel = opts.keys.authInvalidationChannel();
  }

  /** Subscribe to invalidations; resolves once the subscription is active. */
  async start(): Promise<void> {
    // libs/redis' subscriber: the ready check stays on and a SUBSCRIBE waits for the handshake
    // (with the check off, ioredis 5.11 could leave it "ready" on a dead socket after an outage).
    const sub = duplicateSubscriber(this.opts.redis, "auth-invalidation");
    this.subscriber = sub;
    sub.on("error", (e: unknown) => this.opts.log?.warn({ err: e }, "auth invalidation subscriber: redis error"));
    sub.on("message", (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        this.applyLocal(JSON.parse(message) as Invalidation);
      } catch {
        this.applyLocal({ kind: "all" });
      }
    });
    let first = true;
    sub.on("ready", () => {
      if (!first) this.applyLocal({ kind: "all" });
      first = false;
    });
    await sub.subscribe(this.channel);
  }

  async stop(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = null;
    if (sub) sub.disconnect();
  }

  /** Called for every invalidation applied here (the API closes matching WebSockets). */
  onInvalidate(listener: (inv: Invalidation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async authenticate(secret: string | null): Promise<Result<Principal, DomainError>> {
    if (!secret) return err(new DomainError("UNAUTHENTICATED", "an API key is required", { reason: "MISSING_KEY" }));
    const hash = hashApiKey(secret);
    const now = this.clock.nowMs();
    let entry = this.cache.get(hash);
    if (entry && entry.expiresAtMs <= now) {
      this.cache.delete(hash);
      entry = undefined;
    }
    if (!entry) {
      const found = await this.lookup(hash, now);
      if (!found) return err(new DomainError("UNAUTHENTICATED", "unknown API key", { reason: "UNKNOWN_KEY" }));
      entry = found;
    }
    if (entry.revoked)
      return err(new DomainError("UNAUTHENTICATED", "this API key was revoked", { reason: "KEY_REVOKED" }));
    if (entry.suspended) {
      return err(new DomainError("FORBIDDEN", "the tenant is suspended", { reason: "TENANT_SUSPENDED" }));
    }
    this.touch(entry.principal.apiKeyId, now);
    return ok(entry.principal);
  }

  /**
   * The key's row as a cache entry (null: no such key), cached unless an invalidation came
   * while it was read. Concurrent callers of one generation share one query.
   */
  private lookup(hash: string, now: number): Promise<CacheEntry | null> {
    const pending = this.lookups.get(hash);
    if (pending && pending.generation === this.generation) return pending.entry;
    const generation = this.generation;
    const entry = this.readRow(hash, now).then((found) => {
      if (found && generation === this.generation) this.remember(found);
      return found;
    });
    const mine = { generation, entry };
    this.lookups.set(hash, mine);
    const forget = () => {
      if (this.lookups.get(hash) === mine) this.lookups.delete(hash);
    };
    entry.then(forget, forget);
    return entry;
  }

  private async readRow(hash: string, now: number): Promise<CacheEntry | null> {
    const row = await this.opts.db.apiKey.findUnique({
      where: { hash },
      select: {
        id: true,
        hash: true,
        role: true,
        tenantId: true,
        revokedAt: true,
        tenant: { select: { suspended: true } },
      },
    });
    if (!row || !constantTimeEqual(row.hash, hash)) return null;
    return {
      hash,
      principal: { role: row.role, apiKeyId: row.id, tenantId: row.tenantId },
      revoked: row.revokedAt !== null,
      suspended: row.tenant?.suspended ?? false,
      expiresAtMs: now + (this.opts.cacheTtlMs ?? 60_000),
    };
  }

  /** Publish an invalidation to every API process (this one included). */
  async invalidate(inv: Invalidation): Promise<void> {
    this.applyLocal(inv);
    await this.opts.redis.publish(this.channel, JSON.stringify(inv));
  }

  private applyLocal(inv: Invalidation): void {
    this.generation += 1;
    if (inv.kind === "all") this.cache.clear();
    else {
      for (const [hash, e] of this.cache) {
        if (inv.kind === "key" ? e.principal.apiKeyId === inv.apiKeyId : e.principal.tenantId === inv.tenantId) {
          this.cache.delete(hash);
        }
      }
    }
    for (const l of this.listeners) {
      try {
        l(inv);
      } catch (e) {
        this.opts.log?.error({ err: e }, "auth invalidation listener failed");
      }
    }
  }

  private remember(entry: CacheEntry): void {
    const max = this.opts.maxEntries ?? 100_000;
    if (this.cache.size >= max) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(entry.hash, entry);
  }

  private touch(apiKeyId: string, now: number): void {
    const throttle = this.opts.lastUsedThrottleMs ?? 60_000;
    const last = this.lastUsedWrites.get(apiKeyId);
    if (last !== undefined && now - last < throttle) return;
    this.lastUsedWrites.set(apiKeyId, now);
    this.opts.db.apiKey
      .updateMany({ where: { id: apiKeyId }, data: { lastUsedAt: new Date(now) } })
      .catch((e) => this.opts.log?.warn({ err: e }, "could not record lastUsedAt"));
  }
}
