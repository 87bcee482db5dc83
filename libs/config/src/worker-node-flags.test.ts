import * as fs from "node:fs";
import * as path from "node:path";
import { WORKER_NODE_FLAGS } from "./worker-node-flags";

const root = path.resolve(__dirname, "../../..");
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8");

/** Launchers that cannot import the list name each flag themselves: they must not drift from it. */
describe("WORKER_NODE_FLAGS in every launcher that spells them out", () => {
  it.each(WORKER_NODE_FLAGS)("%s", (flag) => {
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    expect(pkg.scripts["start:worker"]).toContain(` ${flag} `);
    // both worker services of docker-compose.yml (the default and the cluster profile)
    const commands = read("docker-compose.yml")
      .split("\n")
      .filter((l) => l.includes("apps/worker/src/main.ts"));
    expect(commands).toHaveLength(2);
    for (const c of commands) expect(c).toContain(`"${flag}"`);
    // npm run bench: its in-process decode loops are the workers' baselines
    expect(read("scripts/run.sh")).toMatch(new RegExp(`bench\\)\\s+exec node ${flag} `));
  });
});
