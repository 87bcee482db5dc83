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

  it("METRICS is on by default, takes on or off, and refuses anything else naming it", () => {
    expect(parseEnv(WorkerEnv, required).METRICS).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, METRICS: "" }).METRICS).toBe("on");
    expect(parseEnv(WorkerEnv, { ...required, METRICS: "off" }).METRICS).toBe("off");
    expect(() => parseEnv(WorkerEnv, { ...required, METRICS: "false" })).toThrow(
      'config error: METRICS must be one of on, off, got "false"',
    );
  });

  it("records usage by default: BENCHMARK_BASELINE_SKIP_USAGE is false unless set to true", () => {
    expect(parseEnv(WorkerEnv, required).BENCHMARK_BASELINE_SKIP_USAGE).toBe("false");
    expect(parseEnv(WorkerEnv, { ...required, BENCHMARK_BASELINE_SKIP_USAGE: "" }).BENCHMARK_BASELINE_SKIP_USAGE).toBe(
      "false",
    );
    expect(
      parseEnv(WorkerEnv, { ...required, BENCHMARK_BASELINE_SKIP_USAGE: "true" }).BENCHMARK_BASELINE_SKIP_USAGE,
    ).toBe("true");
    expect(() => parseEnv(WorkerEnv, { ...required, BENCHMARK_BASELINE_SKIP_USAGE: "yes" })).toThrow(
      'config error: BENCHMARK_BASELINE_SKIP_USAGE must be one of false, true, got "yes"',
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

  it("WORKER_NICE is 0 (keep the priority) by default, takes 0 to 19, and refuses anything else naming it", () => {
    expect(parseEnv(WorkerEnv, required).WORKER_NICE).toBe(0);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_NICE: "10" }).WORKER_NICE).toBe(10);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_NICE: "0" }).WORKER_NICE).toBe(0);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_NICE: "19" }).WORKER_NICE).toBe(19);
    for (const bad of ["20", "-1", "low"])
      expect(() => parseEnv(WorkerEnv, { ...required, WORKER_NICE: bad })).toThrow(/WORKER_NICE/);
  });

  it("WORKER_HEARTBEAT_MS is 1000 by default, 0 turns it off, and a value under 100 is refused naming it", () => {
    expect(parseEnv(WorkerEnv, required).WORKER_HEARTBEAT_MS).toBe(1000);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_HEARTBEAT_MS: "0" }).WORKER_HEARTBEAT_MS).toBe(0);
    expect(parseEnv(WorkerEnv, { ...required, WORKER_HEARTBEAT_MS: "2500" }).WORKER_HEARTBEAT_MS).toBe(2500);
    expect(() => parseEnv(WorkerEnv, { ...required, WORKER_HEARTBEAT_MS: "50" })).toThrow(
      /WORKER_HEARTBEAT_MS must be 0 \(off\) or at least 100 ms/,
    );
    expect(() => parseEnv(WorkerEnv, { ...required, WORKER_HEARTBEAT_MS: "soon" })).toThrow(/WORKER_HEARTBEAT_MS/);
  });
});
