import * as fs from "node:fs";
import * as path from "node:path";
import {
  ACTIVE_STATUSES,
  COMPLETION_STATUSES,
  FINISH_REASONS,
  GRAPHQL_ENUMS,
  isTerminalStatus,
  MODE_PLACEMENTS,
  PLACEMENTS,
  statusOfFinish,
  STORED_ENUMS,
  TERMINAL_STATUSES,
  TIER_MODES,
  enumObject,
} from "./vocabulary";

const repoRoot = path.resolve(__dirname, "..", "..", "..");

/** `enum Name { A B C }` blocks of a Prisma or GraphQL SDL file (comments dropped). */
function enumsOf(file: string): Map<string, string[]> {
  const text = fs.readFileSync(path.join(repoRoot, file), "utf8");
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/^enum\s+(\w+)\s*\{([^}]*)\}/gm)) {
    const values = m[2]
      .split("\n")
      .map((line) => line.replace(/(\/\/|#).*$/, "").trim())
      .filter((v) => v.length > 0);
    out.set(m[1], values);
  }
  return out;
}

describe("the vocabulary", () => {
  it("equals every Prisma enum, value for value and in order", () => {
    const prisma = enumsOf("prisma/schema.prisma");
    expect([...prisma.keys()].sort()).toEqual(Object.keys(STORED_ENUMS).sort());
    for (const [name, values] of Object.entries(STORED_ENUMS))
      expect([name, prisma.get(name)]).toEqual([name, [...values]]);
  });

  it("equals every enum of the GraphQL contract and of the served schema", () => {
    // The served schema extends the contract (never changes it): enums it adds are named here.
    const servedOnly = ["InvoiceStatus"];
    for (const file of ["contract/schema.graphql", "apps/api/schema.graphql"]) {
      const sdl = enumsOf(file);
      const extra = file.startsWith("apps/") ? servedOnly : [];
      expect([...sdl.keys()].sort()).toEqual([...Object.keys(GRAPHQL_ENUMS), ...extra].sort());
      for (const [name, values] of Object.entries(GRAPHQL_ENUMS)) {
        expect([file, name, [...(sdl.get(name) ?? [])].sort()]).toEqual([file, name, [...values].sort()]);
      }
    }
  });

  it("splits the statuses into active and terminal ones", () => {
    expect([...ACTIVE_STATUSES, ...TERMINAL_STATUSES].sort()).toEqual([...COMPLETION_STATUSES].sort());
    for (const s of TERMINAL_STATUSES) expect(isTerminalStatus(s)).toBe(true);
    for (const s of ACTIVE_STATUSES) expect(isTerminalStatus(s)).toBe(false);
    expect(isTerminalStatus("NOPE")).toBe(false);
    expect(FINISH_REASONS.map(statusOfFinish)).toEqual(["COMPLETED", "COMPLETED", "CANCELLED", "FAILED"]);
  });

  it("gives each fixed mode a growing placement set and MAX none", () => {
    expect(Object.keys(MODE_PLACEMENTS)).toEqual(TIER_MODES.filter((m) => m !== "MAX"));
    expect(MODE_PLACEMENTS.FAST).toEqual(["HOT"]);
    expect(MODE_PLACEMENTS.BALANCED).toEqual(["HOT", "WARM"]);
    expect(MODE_PLACEMENTS.DEEP).toEqual(["HOT", "WARM", "COLD"]);
  });

  it("builds enum-like objects for type-graphql", () => {
    expect(enumObject(PLACEMENTS)).toEqual({ HOT: "HOT", WARM: "WARM", COLD: "COLD", ARCHIVE: "ARCHIVE" });
  });
});
