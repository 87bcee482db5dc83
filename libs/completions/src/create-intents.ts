import type { Redis, RedisKeys } from "@lite/redis";

export interface CreateIntent {
  tenantId: string;
  completionId: string;
  /** when createCompletion began writing (ms) */
  atMs: number;
}

/**
 * createCompletion's write-ahead record. Its steps span two stores (the admission
 * reservation and the job in Redis, the row in PostgreSQL) and a process can die between
 * any two: an intent is added before admission and removed once the job is queued (or the
 * request answered otherwise), so whatever an intent outlives by more than a grace was left
 * by a crash, and the reconciler (reconcile.ts) repairs it. One sorted set in the `{sched}`
 * slot: two commands per create.
 */
export class CreateIntents {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async begin(tenantId: string, completionId: string, atMs: number): Promise<void> {
    await this.redis.zadd(this.keys.createIntents(), atMs, `${tenantId}/${completionId}`);
  }

  async end(tenantId: string, completionId: string): Promise<void> {
    await this.redis.zrem(this.keys.createIntents(), `${tenantId}/${completionId}`);
  }

  /** Intents begun before `beforeMs`, oldest first. */
  async olderThan(beforeMs: number, limit: number): Promise<CreateIntent[]> {
    const flat = await this.redis.zrangebyscore(
      this.keys.createIntents(),
      "-inf",
      `(${beforeMs}`,
      "WITHSCORES",
      "LIMIT",
      0,
      limit,
    );
    const out: CreateIntent[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [tenantId, completionId] = flat[i].split("/");
      out.push({ tenantId, completionId, atMs: Number(flat[i + 1]) });
    }
    return out;
  }

  async count(): Promise<number> {
    return this.redis.zcard(this.keys.createIntents());
  }
}
