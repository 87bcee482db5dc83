import * as fs from "node:fs";
import * as path from "node:path";
import { buildSchema, DangerousChangeType, findBreakingChanges, findDangerousChanges, isObjectType } from "graphql";
import { buildApiSchema, RESOLVERS } from "../../apps/api/src/schema";
import { printApiSchema } from "../../apps/api/src/schema-print";
import { roleTable } from "../../apps/api/src/auth/access";
import { CONTRACT_ROLES } from "./role-table";

const repoRoot = path.resolve(__dirname, "..", "..");
// The contract lives in ../shared beside the repository; `contract/schema.graphql` is our
// copy of it, so the suite also runs where ../shared is absent, and is checked against the
// original wherever that is present.
const sharedContractPath = path.resolve(repoRoot, "..", "shared", "contract", "schema.graphql");
const vendoredContractPath = path.join(repoRoot, "contract", "schema.graphql");

describe("served schema vs the contract", () => {
  it("keeps contract/schema.graphql identical to ../shared/contract/schema.graphql (when present)", () => {
    const vendored = fs.readFileSync(vendoredContractPath, "utf8");
    if (fs.existsSync(sharedContractPath)) expect(vendored).toBe(fs.readFileSync(sharedContractPath, "utf8"));
    expect(vendored).toMatch(/type Query \{/);
  });

  it("is a superset of the contract with no changed defaults", async () => {
    const contract = buildSchema(fs.readFileSync(vendoredContractPath, "utf8"));
    const served = await buildApiSchema();
    expect(findBreakingChanges(contract, served)).toEqual([]);
    const dangerous = findDangerousChanges(contract, served).filter(
      (c) => c.type === DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE,
    );
    expect(dangerous).toEqual([]);
  });

  it("names its scalars DateTime, BigInt and Decimal", async () => {
    const served = await buildApiSchema();
    for (const name of ["DateTime", "BigInt", "Decimal"]) expect(served.getType(name)?.name).toBe(name);
    expect(served.getType("DateTimeISO")).toBeUndefined();
  });

  it("matches the committed apps/api/schema.graphql (run `npm run schema:print > apps/api/schema.graphql`)", async () => {
    const committed = fs.readFileSync(path.join(repoRoot, "apps", "api", "schema.graphql"), "utf8");
    expect(await printApiSchema()).toBe(committed);
  });
});

describe("every root field is guarded", () => {
  it("has an @Allow entry for each Query, Mutation and Subscription field, equal to the contract's role table", async () => {
    const served = await buildApiSchema();
    const { table, unguarded } = roleTable(RESOLVERS);
    expect(unguarded).toEqual([]);
    const rootFields: string[] = [];
    for (const root of [served.getQueryType(), served.getMutationType(), served.getSubscriptionType()]) {
      if (!root || !isObjectType(root)) continue;
      for (const name of Object.keys(root.getFields())) rootFields.push(`${root.name}.${name}`);
    }
    expect(rootFields.length).toBeGreaterThanOrEqual(Object.keys(CONTRACT_ROLES).length);
    for (const field of rootFields) {
      const roles = table.get(field);
      expect({ field, guarded: roles !== undefined }).toEqual({ field, guarded: true });
      if (CONTRACT_ROLES[field])
        expect({ field, roles: [...(roles ?? [])].sort() }).toEqual({
          field,
          roles: [...CONTRACT_ROLES[field]].sort(),
        });
    }
    for (const field of Object.keys(CONTRACT_ROLES)) expect(rootFields).toContain(field);
  });
});
