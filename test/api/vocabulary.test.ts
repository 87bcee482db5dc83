import { isEnumType } from "graphql";
import { GRAPHQL_ENUMS } from "@lite/core";
import { buildApiSchema } from "../../apps/api/src/schema";

describe("the served GraphQL enums", () => {
  it("are registered from the @lite/core vocabulary, value for value", async () => {
    const served = await buildApiSchema();
    for (const [name, values] of Object.entries(GRAPHQL_ENUMS)) {
      const type = served.getType(name);
      expect(isEnumType(type)).toBe(true);
      if (!isEnumType(type)) continue;
      expect([name, type.getValues().map((v) => v.value)]).toEqual([name, [...values]]);
    }
  });
});
