import { z } from "zod";
import {
  base64KeyVar,
  bytesVar,
  ConfigError,
  enumVar,
  expertCacheEnvFields,
  hostPortListVar,
  intVar,
  listVar,
  parseEnv,
  urlVar,
} from "./index";

const schema = z.object({
  PORT: intVar(4000, 1, 65535),
  REDIS_URL: urlVar(["redis:", "rediss:"]),
  MASTER_KEY: base64KeyVar(32),
  LOG_LEVEL: enumVar(["debug", "info", "warn"] as const, "info"),
  ORT_EXECUTION_PROVIDERS: listVar(["cpu"]),
});

describe("parseEnv", () => {
  it("applies defaults when variables are unset", () => {
    expect(parseEnv(schema, {})).toEqual({
      PORT: 4000,
      REDIS_URL: undefined,
      MASTER_KEY: undefined,
      LOG_LEVEL: "info",
      ORT_EXECUTION_PROVIDERS: ["cpu"],
    });
  });

  it("accepts values at the limits", () => {
    expect(parseEnv(schema, { PORT: "1" }).PORT).toBe(1);
    expect(parseEnv(schema, { PORT: "65535" }).PORT).toBe(65535);
    const key = Buffer.alloc(32, 7).toString("base64");
    expect(parseEnv(schema, { MASTER_KEY: key }).MASTER_KEY).toEqual(Buffer.alloc(32, 7));
    expect(parseEnv(schema, { ORT_EXECUTION_PROVIDERS: "cuda, cpu" }).ORT_EXECUTION_PROVIDERS).toEqual(["cuda", "cpu"]);
  });

  it("names each bad variable on its own line", () => {
    try {
      parseEnv(schema, {
        PORT: "abc",
        REDIS_URL: "http://x",
        MASTER_KEY: Buffer.alloc(31).toString("base64"),
        LOG_LEVEL: "loud",
      });
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const lines = (e as ConfigError).lines;
      expect(lines).toHaveLength(4);
      expect(lines.find((l) => l.includes("PORT"))).toMatch(/must be an integer, got "abc"/);
      expect(lines.find((l) => l.includes("REDIS_URL"))).toMatch(/must use redis: or rediss:/);
      expect(lines.find((l) => l.includes("MASTER_KEY"))).toMatch(/exactly 32 bytes, got 31/);
      expect(lines.find((l) => l.includes("LOG_LEVEL"))).toMatch(/must be one of debug, info, warn/);
    }
  });

  it("refuses values just past the limits", () => {
    expect(() => parseEnv(schema, { PORT: "0" })).toThrow(/PORT must be between 1 and 65535, got 0/);
    expect(() => parseEnv(schema, { PORT: "65536" })).toThrow(/PORT must be between 1 and 65535, got 65536/);
    expect(() => parseEnv(schema, { REDIS_URL: "not a url" })).toThrow(/REDIS_URL is not a valid URL/);
    expect(() => parseEnv(schema, { MASTER_KEY: "!!!" })).toThrow(/MASTER_KEY must be base64/);
  });

  it("reads REDIS_CLUSTER_NODES as host:port entries and names a bad one", () => {
    const nodes = z.object({ REDIS_CLUSTER_NODES: hostPortListVar() });
    expect(parseEnv(nodes, {}).REDIS_CLUSTER_NODES).toEqual([]);
    const ok = "10.0.0.1:7000, redis-2:65535,[::1]:1";
    expect(parseEnv(nodes, { REDIS_CLUSTER_NODES: ok }).REDIS_CLUSTER_NODES).toEqual([
      "10.0.0.1:7000",
      "redis-2:65535",
      "[::1]:1",
    ]);
    for (const bad of ["10.0.0.1", "redis-2:65536", "redis://h:1", "h:0"])
      expect(() => parseEnv(nodes, { REDIS_CLUSTER_NODES: `h:1,${bad}` })).toThrow(
        new RegExp(
          `REDIS_CLUSTER_NODES must be host:port entries separated by commas, got "${bad.replace(/[./]/g, "\\$&")}"`,
        ),
      );
  });
});

describe("bytesVar and the expert cache variables", () => {
  const bytes = z.object({ HOT_CAPACITY_BYTES: bytesVar(1024, 1, 2 ** 40) });

  it("takes integers and binary units, up to the limits", () => {
    expect(parseEnv(bytes, {}).HOT_CAPACITY_BYTES).toBe(1024);
    expect(parseEnv(bytes, { HOT_CAPACITY_BYTES: "1" }).HOT_CAPACITY_BYTES).toBe(1);
    expect(parseEnv(bytes, { HOT_CAPACITY_BYTES: "512MiB" }).HOT_CAPACITY_BYTES).toBe(512 * 2 ** 20);
    expect(parseEnv(bytes, { HOT_CAPACITY_BYTES: " 3 GiB " }).HOT_CAPACITY_BYTES).toBe(3 * 2 ** 30);
    expect(parseEnv(bytes, { HOT_CAPACITY_BYTES: "1TiB" }).HOT_CAPACITY_BYTES).toBe(2 ** 40);
  });

  it("refuses a bad value in one line naming the variable", () => {
    for (const [value, message] of [
      ["0", /HOT_CAPACITY_BYTES must be between 1 and 1099511627776 bytes, got 0/],
      ["1025GiB", /HOT_CAPACITY_BYTES must be between 1 and/],
      ["1.5GiB", /HOT_CAPACITY_BYTES must be a byte count .* got "1.5GiB"/],
      ["1GB", /HOT_CAPACITY_BYTES must be a byte count/],
    ] as const) {
      try {
        parseEnv(bytes, { HOT_CAPACITY_BYTES: value });
        throw new Error("expected a ConfigError");
      } catch (e) {
        expect((e as ConfigError).lines).toHaveLength(1);
        expect((e as ConfigError).lines[0]).toMatch(message);
      }
    }
  });

  it("defaults: 1 GiB HOT, 2 GiB WARM, epochs of 4096 uses, quotas kept 10 s", () => {
    expect(parseEnv(z.object(expertCacheEnvFields), {})).toEqual({
      HOT_CAPACITY_BYTES: 2 ** 30,
      WARM_CAPACITY_BYTES: 2 ** 31,
      EXPERT_CACHE_EPOCH_USES: 4096,
      EXPERT_CACHE_QUOTA_TTL_SECONDS: 10,
    });
  });
});
