import type { Redis } from "ioredis";
import type { RedisKeys } from "@lite/redis";
import type { TokenSink } from "./engine/ports";

/** Adapts libs/stream TokenStreams to the engine's TokenSink. */
export function streamTokenSink(opts: { redis: Redis; keys: RedisKeys; ttlSeconds: number }): TokenSink {
  void opts;
  throw new Error("not wired yet");
}
