import type { Redis } from "ioredis";
import type { RedisKeys } from "@lite/redis";

/**
 * Poison-job detection's marks, one hash per completion (RedisKeys.replayMark, on its
 * tenant's slot): the stream progress and attempt of its latest start, whether that start
 * entered its first decode step and whether it completed it, and the strikes against it.
 *
 * A strike is a replay that died inside its first decode step — entered (noteEntering) but
 * not completed (noteStepped) — with no token streamed since the one before. A replay that
 * streamed or completed a step clears them; one that never entered a step (held, waiting for
 * a slot) leaves them as they are; the first start is never blamed. So a job that kills every
 * worker while it is computed climbs by one per start, and the jobs of a worker killed for
 * another reason are blamed only if it died inside that one step.
 */
export class ReplayMarks {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** how long a mark outlives its last write */
    private readonly ttlSeconds: number,
  ) {}

  /**
   * A job started again (after its worker died or its lock lapsed), as its `attempt`-th start,
   * with its stream at `progress` (last streamed index, -1 for none). Returns the strikes
   * against it (see the class).
   */
  async noteReplay(tenantId: string, completionId: string, progress: number, attempt: number): Promise<number> {
    const key = this.keys.replayMark(tenantId, completionId);
    const [prev, strikes, last, entered, stepped] = await this.redis.hmget(
      key,
      "progress",
      "strikes",
      "attempt",
      "entered",
      "stepped",
    );
    const cleared = Number(prev ?? -1) !== progress || (last !== null && stepped === last);
    const blamed = last !== null && entered === last && stepped !== last;
    const now = cleared ? 0 : Number(strikes ?? 0) + (blamed ? 1 : 0);
    await this.redis
      .multi()
      .hset(key, "progress", progress, "strikes", now, "attempt", attempt)
      .expire(key, this.ttlSeconds)
      .exec();
    return now;
  }

  /** The `attempt`-th start of a replayed job is about to enter its first decode step. */
  async noteEntering(tenantId: string, completionId: string, attempt: number): Promise<void> {
    await this.redis.hset(this.keys.replayMark(tenantId, completionId), "entered", attempt);
  }

  /** The `attempt`-th start of a replayed job completed its first decode step. */
  async noteStepped(tenantId: string, completionId: string, attempt: number): Promise<void> {
    await this.redis.hset(this.keys.replayMark(tenantId, completionId), "stepped", attempt);
  }
}
