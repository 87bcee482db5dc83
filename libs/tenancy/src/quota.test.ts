import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_QUOTA, effectiveQuota, validateQuota } from "./quota";

/** The Quota model's `@default(...)` values in prisma/schema.prisma, by field. */
function prismaQuotaDefaults(): Record<string, string> {
  const schema = fs.readFileSync(path.join(__dirname, "../../../prisma/schema.prisma"), "utf8");
  const model = /model Quota \{([\s\S]*?)\n\}/.exec(schema);
  if (!model) throw new Error("no Quota model in prisma/schema.prisma");
  const defaults: Record<string, string> = {};
  for (const m of model[1].matchAll(/^\s*(\w+)\s+\w+\s+@default\(([^)]*)\)/gm)) defaults[m[1]] = m[2];
  return defaults;
}

describe("DEFAULT_QUOTA", () => {
  it("is what the Prisma schema's Quota columns default to (the schema may not drift from it)", () => {
    const defaults = prismaQuotaDefaults();
    expect(Object.fromEntries(Object.entries(DEFAULT_QUOTA).map(([k, v]) => [k, String(v)]))).toEqual(
      Object.fromEntries(Object.keys(DEFAULT_QUOTA).map((k) => [k, defaults[k]])),
    );
  });

  it("stands in for a missing row", () => {
    expect(effectiveQuota(null)).toBe(DEFAULT_QUOTA);
    const row = { ...DEFAULT_QUOTA, requestsPerMinute: 5 };
    expect(effectiveQuota(row)).toBe(row);
  });
});

describe("validateQuota", () => {
  it("keeps the given fields and drops null or absent ones", () => {
    const r = validateQuota({ hotMemoryBytes: 5n, requestsPerMinute: 7, tokensPerMinute: null }, "input");
    expect(r).toEqual({ ok: true, value: { hotMemoryBytes: 5n, requestsPerMinute: 7 } });
    expect(validateQuota(undefined, "input")).toEqual({ ok: true, value: {} });
  });

  it("refuses zero, negative, fractional and over-BIGINT values, naming the field", () => {
    for (const [input, field] of [
      [{ kvCacheBytes: 0n }, "input.quota.kvCacheBytes"],
      [{ warmMemoryBytes: 2n ** 63n }, "input.quota.warmMemoryBytes"],
      [{ maxConcurrentRequests: 1.5 }, "input.quota.maxConcurrentRequests"],
      [{ tokensPerMinute: -1 }, "input.quota.tokensPerMinute"],
    ] as const) {
      const r = validateQuota(input, "input.quota");
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatchObject({ code: "BAD_USER_INPUT", field });
    }
  });
});
