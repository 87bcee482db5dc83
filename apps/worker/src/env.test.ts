import { ConfigError, parseEnv } from "@lite/config";
import { WorkerEnv } from "./env";

const required = { DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres", REDIS_URL: "redis://127.0.0.1:6379" };

describe("worker environment", () => {
  it("TIMING_DEFENCE is on by default and takes on or off", () => {
    expect(parseEnv(WorkerEnv, required).TIMING_DEFENCE).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, TIMING_DEFENCE: "" }).TIMING_DEFENCE).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, TIMING_DEFENCE: "on" }).TIMING_DEFENCE).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, TIMING_DEFENCE: "off" }).TIMING_DEFENCE).toBe("off");
  });

  it("refuses any other TIMING_DEFENCE with one line naming it", () => {
    let error: unknown;
    try {
      parseEnv(WorkerEnv, { ...required, TIMING_DEFENCE: "OFF" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).lines).toEqual(['config error: TIMING_DEFENCE must be one of on, off, got "OFF"']);
  });

  it("PREFETCH is on by default, takes on or off, and refuses anything else naming it", () => {
    expect(parseEnv(WorkerEnv, required).PREFETCH).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, PREFETCH: "off" }).PREFETCH).toBe("off");
    expect(() => parseEnv(WorkerEnv, { ...required, PREFETCH: "no" })).toThrow(
      'config error: PREFETCH must be one of on, off, got "no"',
    );
  });

  it("EXPERT_CACHE_EVICTION is fair by default, takes fair or lru (the benchmark baseline), and refuses anything else naming it", () => {
    expect(parseEnv(WorkerEnv, required).EXPERT_CACHE_EVICTION).toBe("fair");
    expect(parseEnv(WorkerEnv, { ...required, EXPERT_CACHE_EVICTION: "lru" }).EXPERT_CACHE_EVICTION).toBe("lru");
    expect(() => parseEnv(WorkerEnv, { ...required, EXPERT_CACHE_EVICTION: "LRU" })).toThrow(
      'config error: EXPERT_CACHE_EVICTION must be one of fair, lru, got "LRU"',
    );
  });

  it("serves metrics by default on 9464 (-1 turns them off), with METRICS_TENANT_LABELS 50 tenant labels", () => {
    const env = parseEnv(WorkerEnv, required);
    expect(env.WORKER_METRICS_PORT).toBe(9464);
    expect(env.METRICS_TENANT_LABELS).toBe(50);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_METRICS_PORT: "-1" }).WORKER_METRICS_PORT).toBe(-1);
    expect(parseEnv(WorkerEnv, { ...required, METRICS_TENANT_LABELS: "0" }).METRICS_TENANT_LABELS).toBe(0);
    expect(() => parseEnv(WorkerEnv, { ...required, METRICS_TENANT_LABELS: "10001" })).toThrow(/METRICS_TENANT_LABELS/);
  });
});
