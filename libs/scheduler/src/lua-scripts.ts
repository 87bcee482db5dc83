import fs from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";

/**
 * Loads `name-<numKeys>.lua` files and registers each with ioredis `defineCommand`
 * (EVALSHA with a transparent EVAL fallback). Command names carry a prefix so they never
 * collide with BullMQ's own commands defined on the same client.
 */
export type LuaCommand = (keys: string[], args: Array<string | number>) => Promise<unknown>;

const cache = new Map<string, Array<{ name: string; numKeys: number; lua: string }>>();

function readDir(dir: string) {
  let files = cache.get(dir);
  if (!files) {
    files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".lua"))
      .map((f) => {
        const m = /^([a-z0-9-]+)-(\d+)\.lua$/.exec(f);
        if (!m) throw new Error(`lua file ${f} is not named name-<numKeys>.lua`);
        return { name: m[1], numKeys: Number(m[2]), lua: fs.readFileSync(path.join(dir, f), "utf8") };
      });
    cache.set(dir, files);
  }
  return files;
}

export function loadLuaCommands<N extends string>(redis: Redis, dir: string, prefix: string): Record<N, LuaCommand> {
  const out: Record<string, LuaCommand> = {};
  for (const { name, numKeys, lua } of readDir(dir)) {
    const command =
      prefix + name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/^./, (c) => c.toUpperCase());
    const r = redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>;
    if (typeof r[command] !== "function") redis.defineCommand(command, { numberOfKeys: numKeys, lua });
    out[name] = (keys, args) => {
      if (keys.length !== numKeys) throw new Error(`${name} takes ${numKeys} keys, got ${keys.length}`);
      return r[command](...keys, ...args);
    };
  }
  return out as Record<N, LuaCommand>;
}

/** Lua returns numbers as integers only; fractional values travel as strings. */
export const num = (v: unknown): number => (typeof v === "number" ? v : Number(v));
