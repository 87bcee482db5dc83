/** Applies Prisma migrations (offline WebAssembly engine, see prisma/offline-engine.ts). */
import { execFileSync } from "node:child_process";
import path from "node:path";

const root = path.resolve(__dirname, "..");

export function migrateDeploy(databaseUrl: string): void {
  const bin = path.join(root, "node_modules", ".bin", "prisma");
  try {
    execFileSync(bin, ["migrate", "deploy"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    const out = `${err.stdout?.toString() ?? ""}${err.stderr?.toString() ?? ""}`;
    throw new Error(`prisma migrate deploy failed:\n${out}`);
  }
}
