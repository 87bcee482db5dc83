/**
 * The one module that builds Redis keys.
 *
 * - Every key starts with the deployment prefix (tests use a unique one each).
 * - Every key holding one tenant's data carries `{t:<tenantId>}`, a Redis Cluster hash
 *   tag, so one tenant's keys share a slot and multi-key Lua scripts on them stay legal.
 * - Global scheduler state lives under its own tag `{sched}`.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {
    if (!/^[A-Za-z0-9:_-]+$/.test(prefix)) throw new Error(`bad redis prefix ${prefix}`);
  }

  /** The hash-tagged namespace of one tenant. */
  tenant(tenantId: string): string {
    return `${this.prefix}:{t:${tenantId}}`;
  }

  /** BullMQ prefix for one tenant's queue (BullMQ appends `:<queue>:<suffix>`). */
  tenantQueuePrefix(tenantId: string): string {
    return this.tenant(tenantId);
  }

  /** Token stream of one completion. */
  completionStream(tenantId: string, completionId: string): string {
    return `${this.tenant(tenantId)}:stream:${completionId}`;
  }

  /** Admission counters and limiter state of one tenant. */
  admission(tenantId: string, what: string): string {
    return `${this.tenant(tenantId)}:adm:${what}`;
  }

  /** Global scheduler keys (which tenants have work, virtual times). */
  sched(what: string): string {
    return `${this.prefix}:{sched}:${what}`;
  }

  /** Pub/sub channel that wakes readers of a tenant's streams. */
  wakeChannel(tenantId: string): string {
    return `${this.tenant(tenantId)}:wake`;
  }

  /** Cross-process invalidation channel for API key caches. */
  authInvalidationChannel(): string {
    return `${this.prefix}:{auth}:invalidate`;
  }

  /** Global (non-tenant) namespace for a named subsystem, e.g. the audit queue. */
  global(subsystem: string): string {
    return `${this.prefix}:{${subsystem}}`;
  }
}
