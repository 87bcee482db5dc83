import { execFileSync, spawnSync } from "node:child_process";
import { chromium, type Browser } from "playwright-core";

/**
 * Debian's `chromium` for the browser tests (Playwright's own browser download cannot work
 * on machines that reach only the npm registry and Debian's mirrors). Missing and running as
 * root: installed from Debian's packages, as scripts/services.ts does for redis-server;
 * missing otherwise: an error saying what to install. CHROMIUM_BIN overrides the lookup.
 */
export function ensureChromium(log: (line: string) => void = () => undefined): string {
  const found = findChromium();
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error("chromium is not installed: run `sudo apt-get install -y chromium` (or set CHROMIUM_BIN)");
  }
  log("installing Debian's chromium (the dashboard tests drive it)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { stdio: "ignore", env });
  const installed = findChromium();
  if (!installed) throw new Error("installing chromium failed: install it by hand or set CHROMIUM_BIN");
  return installed;
}

function findChromium(): string | undefined {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  const r = spawnSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { encoding: "utf8" });
  const p = r.stdout.trim().split("\n")[0];
  return r.status === 0 && p ? p : undefined;
}

/** Headless Debian chromium through playwright-core (no sandbox when root: Chromium refuses it then). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = ensureChromium((l) => process.stderr.write(`${l}\n`));
  const root = process.getuid?.() === 0;
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...(root ? ["--no-sandbox"] : []), "--disable-gpu", "--disable-dev-shm-usage"],
  });
}
