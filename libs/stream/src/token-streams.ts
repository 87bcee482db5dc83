/**
 * Token streams: one Redis Stream per completion (`RedisKeys.completionStream`), entry id
 * `<index + 1>-0`, so appends are idempotent and readers resume from any index.
 *
 * append(events):
 *  1. validate and sort the events; 2. append-1.lua stores those after the last stored index
 *     (a replaying worker never duplicates), nothing after a done event, and refuses gaps;
 *  3. it sets the safety expiry while running and STREAM_TTL_SECONDS once done, and publishes
 *     a wake-up on the completion's channel.
 * read(fromIndex):
 *  1. subscribe to the completion's wake channel (one shared subscriber connection per
 *     TokenStreams, reference-counted per channel) before the first read, so no append
 *     between a read and the wait is missed;
 *  2. XRANGE from `<fromIndex + 1>-0`, yield in order, end after the done event;
 *  3. nothing new: the stream's last entry tells "done before fromIndex" (end), "running"
 *     (wait for a wake-up, or pollIntervalMs as a fallback) or "absent";
 *  4. absent: "not started yet" waits, unless the caller said the completion is finished
 *     (`ifAbsent: "expired"`) or the stream was seen earlier in this read — then
 *     StreamExpiredError (the API's STREAM_EXPIRED).
 */
import fs from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import { duplicateSubscriber, type RedisKeys } from "@lite/redis";
import { TokenEvent } from "./token-event";
import { StreamExpiredError } from "./stream.errors";

export interface TokenStreamsOptions {
  redis: Redis;
  keys: RedisKeys;
  /** retention after the done event, s (STREAM_TTL_SECONDS); default 3600 */
  ttlSeconds?: number;
  /** safety expiry while a completion is running (refreshed by each append), s; default 86400 */
  runningTtlSeconds?: number;
  /** stream length cap, entries; default 4097 (MAX_OUTPUT_TOKENS 4096 + the done event) */
  maxLen?: number;
  /** a waiting reader re-reads at least this often even without a wake-up, ms; default 1000 */
  pollIntervalMs?: number;
  /** entries per XRANGE, default 512 */
  readBatch?: number;
}

export interface ReadOptions {
  /** what an absent stream means: "wait" (not started yet, default) or "expired" (finished) */
  ifAbsent?: "wait" | "expired";
}

const APPEND_LUA = fs.readFileSync(path.join(__dirname, "lua", "append-1.lua"), "utf8");
const APPEND_CMD = "liteStreamAppend";
const APPEND_MANY_LUA = fs.readFileSync(path.join(__dirname, "lua", "append-many.lua"), "utf8");
const APPEND_MANY_CMD = "liteStreamAppendMany";
/**
 * Streams per append-many command: one command is defined per size, and a call pads its
 * streams up to the next size (below). Few sizes, because ioredis copies every command
 * defined on a connection onto each pipeline it builds (Pipeline's constructor), and with
 * auto-pipelining it builds one per tick that sends anything. With one command per count
 * 1 … 64 (over 80 scripts on the worker's connection) a pipeline took 43–50 µs to build,
 * against 13–16 µs with these (26 scripts); the worker spent about 2% of its thread there in
 * the overhead bench (CPU profile: ~19 µs per token in Pipeline's constructor).
 */
const APPEND_MANY_SIZES = [1, 2, 4, 8, 16, 32, 64] as const;
const APPEND_MANY_MAX = APPEND_MANY_SIZES[APPEND_MANY_SIZES.length - 1];

type Waker = () => void;

export class TokenStreams {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly ttlSeconds: number;
  private readonly runningTtlSeconds: number;
  private readonly maxLen: number;
  private readonly pollIntervalMs: number;
  private readonly readBatch: number;
  private subscriber?: Redis;
  private readonly listeners = new Map<string, { wakers: Set<Waker>; subscribed: Promise<unknown> }>();

  constructor(opts: TokenStreamsOptions) {
    this.redis = opts.redis;
    this.keys = opts.keys;
    this.ttlSeconds = opts.ttlSeconds ?? 3600;
    this.runningTtlSeconds = Math.max(opts.runningTtlSeconds ?? 86400, this.ttlSeconds);
    this.maxLen = opts.maxLen ?? 4097;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.readBatch = opts.readBatch ?? 512;
    const r = this.redis as unknown as Record<string, unknown>;
    if (typeof r[APPEND_CMD] !== "function") this.redis.defineCommand(APPEND_CMD, { numberOfKeys: 1, lua: APPEND_LUA });
    for (const n of APPEND_MANY_SIZES)
      if (typeof r[`${APPEND_MANY_CMD}${n}`] !== "function")
        this.redis.defineCommand(`${APPEND_MANY_CMD}${n}`, { numberOfKeys: n, lua: APPEND_MANY_LUA });
  }

  /** Appends events whose index is past the last stored one; returns the last index stored. */
  async append(tenantId: string, completionId: string, events: TokenEvent[]): Promise<number> {
    const sorted = events.map((e) => TokenEvent.parse(e)).sort((a, b) => a.index - b.index);
    const args: Array<string | number> = [
      this.maxLen,
      this.ttlSeconds,
      this.runningTtlSeconds,
      this.keys.streamWakeChannel(tenantId, completionId),
      "1",
    ];
    for (const e of sorted) args.push(e.index, e.done ? "1" : "0", JSON.stringify(e));
    const cmd = (this.redis as unknown as Record<string, (...a: Array<string | number>) => Promise<number>>)[
      APPEND_CMD
    ];
    return Number(await cmd.call(this.redis, this.keys.completionStream(tenantId, completionId), ...args));
  }

  /**
   * `append` for several completions of ONE tenant in one Lua call (append-many.lua; the
   * streams share the tenant's hash tag): the worker's per-step flush. Each stream gets
   * exactly what `append` would store. Returns the last index stored of each, in order.
   */
  async appendMany(
    tenantId: string,
    items: ReadonlyArray<{ completionId: string; events: TokenEvent[] }>,
  ): Promise<number[]> {
    if (items.length === 0) return [];
    // More streams than APPEND_MANY_MAX go in several calls (see below).
    if (items.length > APPEND_MANY_MAX) {
      const out: number[] = [];
      for (let i = 0; i < items.length; i += APPEND_MANY_MAX)
        out.push(...(await this.appendMany(tenantId, items.slice(i, i + APPEND_MANY_MAX))));
      return out;
    }
    const keys: string[] = [];
    const args: Array<string | number> = [this.maxLen, this.ttlSeconds, this.runningTtlSeconds, "1"];
    let channel = "";
    for (const { completionId, events } of items) {
      const sorted = events.map((e) => TokenEvent.parse(e)).sort((a, b) => a.index - b.index);
      keys.push(this.keys.completionStream(tenantId, completionId));
      channel = this.keys.streamWakeChannel(tenantId, completionId);
      args.push(channel, sorted.length);
      for (const e of sorted) args.push(e.index, e.done ? "1" : "0", JSON.stringify(e));
    }
    // Padded to the command's size with the last stream again, given no events: the script
    // reads its last index and stores nothing (no EXPIRE, no PUBLISH).
    const size = APPEND_MANY_SIZES.find((n) => n >= items.length)!;
    const lastKey = keys[keys.length - 1];
    for (let k = items.length; k < size; k++) {
      keys.push(lastKey);
      args.push(channel, 0);
    }
    // One command per size, so that its first argument is a key (not a key count): ioredis' auto-
    // pipelining on a Redis Cluster routes a command by its first argument, and a leading key
    // count put the whole pipeline (other tenants' and the dispatcher's commands with it) on a
    // wrong slot group ("All keys in the pipeline should belong to the same slots allocation
    // group": a worker on a cluster never started a job). They are all defined in the
    // constructor: a command defined later is missing from an auto-pipeline already open in
    // that tick.
    const r = this.redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown[]>>;
    const last = await r[`${APPEND_MANY_CMD}${size}`].call(this.redis, ...keys, ...args);
    return last.slice(0, items.length).map(Number);
  }

  /** The last index stored, -1 when the stream is empty or absent. */
  async lastIndex(tenantId: string, completionId: string): Promise<number> {
    const tail = await this.redis.xrevrange(this.keys.completionStream(tenantId, completionId), "+", "-", "COUNT", 1);
    return tail.length === 0 ? -1 : entryIndex(tail[0][0]);
  }

  /**
   * Every event stored so far, in index order (one XRANGE: a stream holds at most `maxLen`
   * entries); [] when the stream is absent. For a snapshot such as the text so far; a
   * subscriber uses `read`.
   */
  async readAll(tenantId: string, completionId: string): Promise<TokenEvent[]> {
    const entries = await this.redis.xrange(this.keys.completionStream(tenantId, completionId), "-", "+");
    return entries.map(([id, fields]) => parseEntry(id, fields));
  }

  async exists(tenantId: string, completionId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.completionStream(tenantId, completionId))) === 1;
  }

  /** Replays what is stored from fromIndex, then follows live; ends after the done event. */
  async *read(
    tenantId: string,
    completionId: string,
    fromIndex: number,
    signal?: AbortSignal,
    opts: ReadOptions = {},
  ): AsyncIterable<TokenEvent> {
    const key = this.keys.completionStream(tenantId, completionId);
    const channel = this.keys.streamWakeChannel(tenantId, completionId);
    let wake: Waker = () => undefined;
    let woken = false;
    const waker: Waker = () => {
      woken = true;
      wake();
    };
    await this.listen(channel, waker);
    let next = Math.max(0, Math.floor(fromIndex));
    let seen = false;
    try {
      while (!signal?.aborted) {
        woken = false;
        const entries = await this.redis.xrange(key, `${next + 1}-0`, "+", "COUNT", this.readBatch);
        if (entries.length > 0) {
          seen = true;
          for (const [id, fields] of entries) {
            const event = parseEntry(id, fields);
            if (event.index < next) continue;
            yield event;
            next = event.index + 1;
            if (event.done) return;
          }
          continue;
        }
        const tail = await this.redis.xrevrange(key, "+", "-", "COUNT", 1);
        if (tail.length > 0) {
          seen = true;
          const last = parseEntry(tail[0][0], tail[0][1]);
          // Ended before fromIndex: nothing more will come. Ended at or after it: the tokens
          // (and the done event) were appended between the XRANGE above and this read — read on.
          if (last.done && last.index < next) return;
          if (last.index >= next) continue;
        } else if (seen || opts.ifAbsent === "expired") {
          throw new StreamExpiredError(completionId);
        }
        if (woken) continue; // an append landed while we were reading
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.pollIntervalMs);
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve();
          }
          wake = done;
          signal?.addEventListener("abort", done, { once: true });
        });
        wake = () => undefined;
      }
    } finally {
      await this.unlisten(channel, waker);
    }
  }

  /** Closes the shared subscriber connection (the caller owns `redis`). */
  async close(): Promise<void> {
    this.listeners.clear();
    const s = this.subscriber;
    this.subscriber = undefined;
    if (s) await s.quit().catch(() => s.disconnect());
  }

  private async listen(channel: string, waker: Waker): Promise<void> {
    if (!this.subscriber) {
      // See duplicateSubscriber: SUBSCRIBE must not race the ready check's INFO, and turning
      // the ready check off could leave the connection "ready" on a dead socket forever.
      this.subscriber = duplicateSubscriber(this.redis, "token-streams-sub");
      this.subscriber.on("message", (ch: string) => {
        for (const w of this.listeners.get(ch)?.wakers ?? []) w();
      });
      this.subscriber.on("error", () => undefined); // reconnects; readers fall back to polling meanwhile
    }
    let entry = this.listeners.get(channel);
    if (!entry) {
      entry = { wakers: new Set(), subscribed: this.subscriber.subscribe(channel) };
      this.listeners.set(channel, entry);
    }
    entry.wakers.add(waker);
    try {
      await entry.subscribed; // every reader waits until the subscription is live
    } catch (e) {
      // Do not cache a failed subscription: the next reader of this channel tries again.
      entry.wakers.delete(waker);
      if (this.listeners.get(channel) === entry && entry.wakers.size === 0) this.listeners.delete(channel);
      throw e;
    }
  }

  private async unlisten(channel: string, waker: Waker): Promise<void> {
    const entry = this.listeners.get(channel);
    if (!entry) return;
    entry.wakers.delete(waker);
    if (entry.wakers.size === 0) {
      this.listeners.delete(channel);
      await this.subscriber?.unsubscribe(channel).catch(() => undefined);
    }
  }
}

function entryIndex(id: string): number {
  return Number(id.slice(0, id.indexOf("-"))) - 1;
}

function parseEntry(id: string, fields: string[]): TokenEvent {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === "e") return TokenEvent.parse(JSON.parse(fields[i + 1]));
  }
  throw new Error(`stream entry ${id} has no event`);
}
