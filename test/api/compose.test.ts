/** docker-compose.yml: no Docker here, so parse it and check it is coherent. */
import * as fs from "node:fs";
import * as path from "node:path";
import yaml from "js-yaml";

const root = path.resolve(__dirname, "..", "..");
type Service = {
  profiles?: string[];
  entrypoint?: string[];
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
};
const compose = yaml.load(fs.readFileSync(path.join(root, "docker-compose.yml"), "utf8")) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

describe("docker-compose.yml", () => {
  it("has postgres, redis, the API and a scalable worker", () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(["postgres", "redis", "api", "worker", "init"]),
    );
    const worker = compose.services.worker;
    expect(worker.ports).toBeUndefined();
    expect(worker.container_name).toBeUndefined();
    expect(compose.services.api.ports).toEqual(["4000:4000"]);
  });

  it("points every app container at the compose services, with the same secrets", () => {
    for (const name of ["init", "api", "worker"]) {
      const env = compose.services[name].environment ?? {};
      expect(env.DATABASE_URL).toMatch(/^postgresql:\/\/lite:lite@postgres:5432\/lite$/);
      expect(env.REDIS_URL).toBe("redis://redis:6379");
      expect(env.MODEL_DIR).toBe("/models");
      expect(env.ADMIN_API_KEY).toMatch(/^\$\{ADMIN_API_KEY:\?/);
      expect(env.MASTER_KEY).toMatch(/^\$\{MASTER_KEY:\?/);
    }
    const pg = compose.services.postgres.environment ?? {};
    expect([pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB]).toEqual(["lite", "lite", "lite"]);
  });

  it("runs entry points that exist, after init completes, from an image built by a Dockerfile that exists", () => {
    for (const name of ["init", "api", "worker"]) {
      const s = compose.services[name];
      expect(s.image).toBe("lite-llm:local");
      const entry = s.command?.find((a) => a.endsWith(".ts"));
      expect(entry && fs.existsSync(path.join(root, entry))).toBe(true);
    }
    expect(compose.services.api.depends_on?.init.condition).toBe("service_completed_successfully");
    expect(compose.services.worker.depends_on?.init.condition).toBe("service_completed_successfully");
    expect(compose.services.init.depends_on?.postgres.condition).toBe("service_healthy");
    const build = compose.services.init.build!;
    expect(fs.existsSync(path.join(root, build.context, build.dockerfile))).toBe(true);
    const ignore = fs.readFileSync(path.join(root, `${build.dockerfile}.dockerignore`), "utf8").split("\n");
    expect(ignore).toEqual(expect.arrayContaining(["node_modules", "var"]));
  });

  it("profile cluster: three cluster-enabled masters, a one-shot create, and the apps pointed at them", () => {
    const nodes = ["redis-c1", "redis-c2", "redis-c3"];
    for (const name of [...nodes, "redis-cluster-create", "init-cluster", "api-cluster", "worker-cluster"])
      expect(compose.services[name].profiles).toEqual(["cluster"]);
    for (const name of ["postgres", "redis", "init", "api", "worker"])
      expect(compose.services[name].profiles).toBeUndefined();
    for (const n of nodes) expect(compose.services[n].command?.join(" ")).toContain("--cluster-enabled yes");
    const create = compose.services["redis-cluster-create"];
    expect(create.entrypoint?.join("\n")).toContain("--cluster-replicas 0 --cluster-yes");
    for (const n of nodes) expect(create.depends_on?.[n].condition).toBe("service_healthy");
    expect(compose.services["init-cluster"].depends_on?.["redis-cluster-create"].condition).toBe(
      "service_completed_successfully",
    );
    for (const name of ["init-cluster", "api-cluster", "worker-cluster"]) {
      const env = compose.services[name].environment ?? {};
      expect(env.REDIS_CLUSTER_NODES).toBe(nodes.map((n) => `${n}:6379`).join(","));
      expect(env.REDIS_URL).toBe("redis://redis-c1:6379");
      expect(env.DATABASE_URL).toBe(compose.services.api.environment?.DATABASE_URL);
      const entry = compose.services[name].command?.find((a) => a.endsWith(".ts"));
      expect(entry).toBe(compose.services[name.replace("-cluster", "")].command?.find((a) => a.endsWith(".ts")));
    }
    for (const name of ["api-cluster", "worker-cluster"])
      expect(compose.services[name].depends_on?.["init-cluster"].condition).toBe("service_completed_successfully");
  });

  it("profile observability: Prometheus scrapes the API and every worker with the ADMIN key, Grafana has the dashboard", () => {
    for (const name of ["prometheus", "grafana"]) expect(compose.services[name].profiles).toEqual(["observability"]);
    const prom = compose.services.prometheus;
    expect(prom.environment?.ADMIN_API_KEY).toBe(compose.services.api.environment?.ADMIN_API_KEY);
    expect(prom.entrypoint?.join(" ")).toContain('"$$ADMIN_API_KEY" > /prometheus/admin.key');
    const config = yaml.load(fs.readFileSync(path.join(root, "docs", "prometheus", "prometheus.yml"), "utf8")) as {
      scrape_configs: Array<{
        job_name: string;
        authorization?: { credentials_file: string };
        static_configs?: Array<{ targets: string[] }>;
        dns_sd_configs?: Array<{ names: string[]; port: number }>;
      }>;
    };
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(jobs["lite-api"].static_configs?.[0].targets).toEqual(["api:4000"]);
    expect(jobs["lite-worker"].dns_sd_configs?.[0]).toMatchObject({ names: ["worker"], port: 9464 });
    for (const j of config.scrape_configs) expect(j.authorization?.credentials_file).toBe("/prometheus/admin.key");
    for (const s of [prom, compose.services.grafana])
      for (const v of s.volumes ?? []) {
        const host = v.split(":")[0];
        if (host.startsWith(".")) expect(fs.existsSync(path.join(root, host))).toBe(true);
      }
  });

  it("declares every named volume it mounts", () => {
    for (const s of Object.values(compose.services)) {
      for (const v of s.volumes ?? []) {
        const name = v.split(":")[0];
        if (!name.startsWith(".") && !name.startsWith("/")) expect(Object.keys(compose.volumes)).toContain(name);
      }
    }
  });
});
