import { isEnumType } from "graphql";
import {
  COMPLETION_STATUSES,
  FINISH_REASONS,
  GRANULARITIES,
  METERS,
  OVER_QUOTA_POLICIES,
  PLACEMENTS,
  ROLES,
  TIER_MODES,
} from "@lite/core";
import { buildApiSchema } from "../../apps/api/src/schema";

describe("the served GraphQL enums", () => {
  it("are registered from the @lite/core vocabulary, value for value", async () => {
    const served = await buildApiSchema();
    const expected: Record<string, readonly string[]> = {
      Role: ROLES,
      Placement: PLACEMENTS,
      TierMode: TIER_MODES,
      OverQuotaPolicy: OVER_QUOTA_POLICIES,
      CompletionStatus: COMPLETION_STATUSES,
      FinishReason: FINISH_REASONS,
      Meter: METERS,
      Granularity: GRANULARITIES,
    };
    for (const [name, values] of Object.entries(expected)) {
      const type = served.getType(name);
      expect(isEnumType(type)).toBe(true);
      if (!isEnumType(type)) continue;
      expect([name, type.getValues().map((v) => v.value)]).toEqual([name, [...values]]);
    }
  });
});
