/**
 * The "boundaries" step of `npm test` (run through turbo, cached): one dependency-cruiser pass
 * over the tree with the rules in .dependency-cruiser.cjs, then every workspace package.json
 * checked against what its files import, so the package graph that turbo hashes (and that a
 * reader trusts) is the real one:
 *   - `exports` declares "." as the package's entry (main), and every target exists;
 *   - each `@lite/*` package and npm package a file imports is declared, `@lite/*` as "*" and
 *     npm packages at the root package.json's exact version (tests and `src/testing/` may use
 *     devDependencies);
 *   - nothing declared goes unused, and the workspace graph has no cycle;
 *   - files outside the workspaces (test/, bench/, scripts/, prisma/) import only packages the
 *     root package.json declares.
 * Exit code 1 and one line per problem when anything fails.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(__dirname, "..");
const CRUISED = ["apps", "libs", "test", "bench", "scripts", "prisma", "prisma.config.ts"];

interface CruisedDependency {
  module: string;
  resolved: string;
  coreModule: boolean;
}
interface CruisedModule {
  source: string;
  dependencies: CruisedDependency[];
}
interface Violation {
  from: string;
  to: string;
  rule: { name: string; severity: string };
  cycle?: { name: string }[];
  via?: { name: string }[];
}
interface CruiseResult {
  modules: CruisedModule[];
  summary: {
    violations: Violation[];
    totalCruised: number;
    totalDependenciesCruised: number;
    ruleSetUsed: { forbidden?: { name: string; comment?: string }[] };
  };
}
interface Manifest {
  name: string;
  main?: string;
  exports?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  workspaces?: string[];
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

function cruise(): CruiseResult {
  const bin = path.join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
  const r = spawnSync(process.execPath, [bin, "-c", ".dependency-cruiser.cjs", "-T", "json", ...CRUISED], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 512 * 1024 * 1024,
  });
  if (!r.stdout) throw new Error(`dependency-cruiser failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as CruiseResult;
}

/**
 * One entry per violation; a reachability rule reports every module reached, so those are
 * grouped per rule and importing module, showing the shortest path and how many more.
 */
function ruleViolations(result: CruiseResult): string[] {
  const comments = new Map((result.summary.ruleSetUsed.forbidden ?? []).map((r) => [r.name, r.comment ?? ""]));
  const groups = new Map<string, Violation[]>();
  for (const v of result.summary.violations) {
    const key = v.via ? `${v.rule.name} ${v.from}` : `${v.rule.name} ${v.from} ${v.to}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  return [...groups.values()].map((vs) => {
    const v = vs.reduce((a, b) => ((b.via?.length ?? 0) < (a.via?.length ?? 0) ? b : a));
    const chain = v.cycle ?? v.via;
    const lines = [`${v.rule.severity} ${v.rule.name}: ${v.from} → ${v.to}`];
    if (chain && chain.length > 1) lines.push(`    via ${[v.from, ...chain.map((c) => c.name)].join(" → ")}`);
    if (vs.length > 1) {
      const packages = vs.filter((o) => o.to.startsWith("node_modules/")).map((o) => o.to);
      const among = packages.length ? `, among them ${packages.join(", ")}` : "";
      lines.push(`    (and ${vs.length - 1} more modules reached from ${v.from}${among})`);
    }
    lines.push(`    ${comments.get(v.rule.name)}`);
    return lines.join("\n");
  });
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; relative and built-in → undefined */
function packageName(dep: CruisedDependency): string | undefined {
  if (dep.coreModule || dep.module.startsWith(".") || dep.module.startsWith("node:")) return undefined;
  const parts = dep.module.split("/");
  return dep.module.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Test code may use devDependencies: test files and a package's `src/testing/` support. */
const isTestCode = (file: string) => /\.test\.ts$/.test(file) || file.includes("/src/testing/");

function workspaceDirs(rootManifest: Manifest): string[] {
  return (rootManifest.workspaces ?? []).flatMap((glob) => {
    const parent = glob.replace(/\/\*$/, "");
    return fs
      .readdirSync(path.join(root, parent), { withFileTypes: true })
      .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, parent, d.name, "package.json")))
      .map((d) => `${parent}/${d.name}`);
  });
}

interface Usage {
  /** package → first non-test file importing it */
  runtime: Map<string, string>;
  /** package → first test file importing it */
  test: Map<string, string>;
}

function usageByOwner(modules: CruisedModule[], owners: string[]): Map<string, Usage> {
  const usage = new Map(owners.map((o) => [o, { runtime: new Map(), test: new Map() } as Usage]));
  for (const m of modules) {
    if (m.source.startsWith("node_modules/")) continue;
    const owner = owners.find((o) => o !== "." && m.source.startsWith(`${o}/`)) ?? ".";
    const u = usage.get(owner);
    if (!u) continue;
    for (const dep of m.dependencies) {
      const name = packageName(dep);
      if (!name) continue;
      const bucket = isTestCode(m.source) ? u.test : u.runtime;
      if (!bucket.has(name)) bucket.set(name, m.source);
    }
  }
  return usage;
}

function checkExports(dir: string, m: Manifest): string[] {
  const problems: string[] = [];
  const main = `./${path.posix.normalize(m.main ?? "src/index.ts")}`;
  if (!m.exports || m.exports["."] !== main) {
    problems.push(`${dir}/package.json: "exports" must declare ".": "${main}" (its main)`);
  }
  for (const [sub, target] of Object.entries(m.exports ?? {})) {
    if (!fs.existsSync(path.join(root, dir, target))) {
      problems.push(`${dir}/package.json: export "${sub}" points to ${target}, which does not exist`);
    }
  }
  return problems;
}

function checkDeclarations(dir: string, m: Manifest, u: Usage, rootManifest: Manifest, names: Set<string>): string[] {
  const problems: string[] = [];
  const deps = m.dependencies ?? {};
  const devDeps = m.devDependencies ?? {};
  const rootVersion = (n: string) => rootManifest.dependencies?.[n] ?? rootManifest.devDependencies?.[n];
  const want = (n: string) => (names.has(n) ? "*" : (rootVersion(n) ?? "<add it to the root package.json first>"));
  for (const [name, file] of u.runtime) {
    if (name === m.name || name in deps) continue;
    problems.push(`${dir}/package.json: ${file} imports ${name}; add "${name}": "${want(name)}" to "dependencies"`);
  }
  for (const [name, file] of u.test) {
    if (name === m.name || name in deps || name in devDeps) continue;
    problems.push(`${dir}/package.json: ${file} imports ${name}; add "${name}": "${want(name)}" to "devDependencies"`);
  }
  for (const [field, declared] of [
    ["dependencies", deps],
    ["devDependencies", devDeps],
  ] as const) {
    for (const [name, version] of Object.entries(declared)) {
      const used = u.runtime.has(name) || (u.test.has(name) && field === "devDependencies");
      if (!used) {
        const hint = u.test.has(name) ? "only tests import it: move it to devDependencies" : "nothing imports it";
        problems.push(`${dir}/package.json: "${field}" declares ${name}, but ${hint}`);
      } else if (version !== want(name)) {
        problems.push(`${dir}/package.json: ${name} is declared as "${version}"; declare "${want(name)}"`);
      }
    }
  }
  return problems;
}

/** turbo needs an acyclic workspace graph; a cycle through devDependencies counts too. */
function checkPackageCycles(manifests: Map<string, Manifest>): string[] {
  const edges = new Map<string, string[]>();
  for (const m of manifests.values()) {
    const all = { ...m.dependencies, ...m.devDependencies };
    edges.set(
      m.name,
      Object.keys(all).filter((n) => [...manifests.values()].some((o) => o.name === n)),
    );
  }
  const problems: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (n: string, trail: string[]) => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "open") {
      problems.push(`package cycle: ${[...trail.slice(trail.indexOf(n)), n].join(" → ")}`);
      return;
    }
    state.set(n, "open");
    for (const next of edges.get(n) ?? []) visit(next, [...trail, n]);
    state.set(n, "done");
  };
  for (const n of edges.keys()) visit(n, []);
  return problems;
}

function checkManifests(result: CruiseResult): string[] {
  const rootManifest = readJson<Manifest>(path.join(root, "package.json"));
  const dirs = workspaceDirs(rootManifest);
  const manifests = new Map(dirs.map((d) => [d, readJson<Manifest>(path.join(root, d, "package.json"))]));
  const names = new Set([...manifests.values()].map((m) => m.name));
  const usage = usageByOwner(result.modules, [...dirs, "."]);
  const problems: string[] = [];
  for (const [dir, m] of manifests) {
    problems.push(...checkExports(dir, m));
    problems.push(...checkDeclarations(dir, m, usage.get(dir)!, rootManifest, names));
  }
  problems.push(...checkPackageCycles(manifests));
  const top = usage.get(".")!;
  for (const [name, file] of [...top.runtime, ...top.test]) {
    if (names.has(name) || rootManifest.dependencies?.[name] || rootManifest.devDependencies?.[name]) continue;
    problems.push(`package.json: ${file} imports ${name}, which the root package.json does not declare`);
  }
  return problems;
}

function main(): number {
  const started = Date.now();
  const result = cruise();
  const problems = [...ruleViolations(result), ...checkManifests(result)];
  for (const p of problems) console.error(`boundaries: ${p}`);
  const { totalCruised, totalDependenciesCruised } = result.summary;
  const what = `${totalCruised} modules, ${totalDependenciesCruised} imports (${Date.now() - started} ms)`;
  if (problems.length > 0) {
    console.error(`boundaries: ${problems.length} problem(s) in ${what}; rules and reasons: .dependency-cruiser.cjs`);
    return 1;
  }
  console.error(`boundaries: ok, ${what}`);
  return 0;
}

process.exit(main());
