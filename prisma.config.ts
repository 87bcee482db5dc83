import path from "node:path";
import { defineConfig } from "prisma/config";
import { cliAdapter } from "./prisma/offline-engine";

process.env.CHECKPOINT_DISABLE = "1";

export default defineConfig({
  schema: path.join(__dirname, "prisma", "schema.prisma"),
  migrations: { path: path.join(__dirname, "prisma", "migrations") },
  engine: "js",
  experimental: { adapter: true },
  adapter: async () => {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("DATABASE_URL is not set");
    return cliAdapter(url);
  },
});
