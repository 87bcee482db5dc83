/**
 * BullMQ handles for per-tenant queues, bounded and connection-free.
 *
 * Every tenant has its own BullMQ queue (prefix `RedisKeys.tenantQueuePrefix(tenant)`, so all
 * its keys share the tenant's hash slot). Holding one Worker per tenant would hold a
 * blocking connection per tenant (Redis' maxclients is 10,000), so instead:
 *  1. one root Redis backend wraps the caller's `bullConnection` (shared, never duplicated);
 *  2. each tenant's Queue and Worker get a sibling backend (`forQueue`) that reuses the root
 *     connection: constructing one opens no connection and starts no timer;
 *  3. the handles live in a bounded LRU; evicting one just drops it (there is nothing to
 *     close, and jobs already handed out keep working through their own backend reference).
 * Jobs are only fetched with `getNextJob(token, { block: false })` (BullMQ's "manually
 * processing jobs" pattern), so the blocking connection a Worker normally needs is never used.
 */
import { Queue, Worker, createRedisBackend, type RedisQueueBackend } from "bullmq";
import type { Redis } from "ioredis";
import type { RedisKeys } from "@lite/redis";
import { JOB_CATALOG } from "./job-catalog";
import { Lru } from "./lru";

/** One tenant's queue: the Queue (producer side) and Worker (consumer side) are made on first use. */
export class TenantQueueHandle {
  private q?: Queue;
  private w?: Worker;
  constructor(
    readonly tenantId: string,
    /** the sibling backend (moveStalledJobsToWait, remove, keys) */
    readonly backend: RedisQueueBackend,
    private readonly make: { queue: () => Queue; worker: () => Worker },
  ) {}
  get queue(): Queue {
    return (this.q ??= this.make.queue());
  }
  get worker(): Worker {
    return (this.w ??= this.make.worker());
  }
}

export interface TenantQueuesOptions {
  connection: Redis;
  keys: RedisKeys;
  /** lock a dispatched job holds before it counts as stalled, ms */
  lockDurationMs: number;
  /** BullMQ stalled-check throttle per queue, ms */
  stalledIntervalMs: number;
  /** stalls before the job comes back with a deferred failure */
  maxStalledCount: number;
  /** handles kept, default 1000 */
  capacity: number;
}

export class TenantQueues {
  private readonly root: RedisQueueBackend;
  private readonly lru: Lru<string, TenantQueueHandle>;

  constructor(private readonly opts: TenantQueuesOptions) {
    this.root = createRedisBackend(
      JOB_CATALOG.completion.queueName,
      {
        connection: opts.connection,
        prefix: opts.keys.prefix,
        lockDuration: opts.lockDurationMs,
        stalledInterval: opts.stalledIntervalMs,
        maxStalledCount: opts.maxStalledCount,
      } as never,
      { blocking: false },
    ) as RedisQueueBackend;
    // Like the per-queue listeners below: without one, a Redis outage throws from EventEmitter
    // and takes the whole process (API or worker) down instead of failing the awaited calls.
    (this.root as unknown as { on(event: "error", fn: () => void): void }).on("error", () => undefined);
    this.lru = new Lru(opts.capacity);
  }

  get(tenantId: string): TenantQueueHandle {
    let h = this.lru.get(tenantId);
    if (!h) {
      h = this.create(tenantId);
      this.lru.set(tenantId, h);
    }
    return h;
  }

  get size(): number {
    return this.lru.size;
  }

  private create(tenantId: string): TenantQueueHandle {
    const prefix = this.opts.keys.tenantQueuePrefix(tenantId);
    const name = JOB_CATALOG.completion.queueName;
    const backend = this.root.forQueue(name, prefix) as RedisQueueBackend;
    const factory = () => backend;
    const common = { connection: this.opts.connection, prefix };
    // Errors surface through the awaited calls; the listeners keep EventEmitter from throwing.
    return new TenantQueueHandle(tenantId, backend, {
      queue: () => {
        // The meta hash caps the tenant's BullMQ event stream (nobody listens to it).
        const q = new Queue(name, { ...common, streams: { events: { maxLen: 100 } } }, factory as never);
        q.on("error", () => undefined);
        return q;
      },
      worker: () => {
        const w = new Worker(
          name,
          null,
          {
            ...common,
            autorun: false,
            lockDuration: this.opts.lockDurationMs,
            stalledInterval: this.opts.stalledIntervalMs,
            maxStalledCount: this.opts.maxStalledCount,
          },
          factory as never,
        );
        w.on("error", () => undefined);
        return w;
      },
    });
  }

  async close(): Promise<void> {
    this.lru.clear();
    await this.root.close();
  }
}
