import { registerEnumType } from "type-graphql";

/** The contract's enums, as const objects (their values are Prisma's enum strings). */
const enumOf = <T extends string>(...values: T[]) => Object.fromEntries(values.map((v) => [v, v])) as { [K in T]: K };

export const Role = enumOf("ADMIN", "TENANT", "FINANCE");
export type Role = keyof typeof Role;
export const Placement = enumOf("HOT", "WARM", "COLD", "ARCHIVE");
export type Placement = keyof typeof Placement;
export const TierMode = enumOf("FAST", "BALANCED", "DEEP", "MAX");
export type TierMode = keyof typeof TierMode;
export const OverQuotaPolicy = enumOf("REJECT", "DEGRADE");
export type OverQuotaPolicy = keyof typeof OverQuotaPolicy;
export const CompletionStatus = enumOf("QUEUED", "RUNNING", "COMPLETED", "CANCELLED", "FAILED");
export type CompletionStatus = keyof typeof CompletionStatus;
export const FinishReason = enumOf("STOP", "LENGTH", "CANCELLED", "ERROR");
export type FinishReason = keyof typeof FinishReason;
export const Meter = enumOf(
  "INPUT_TOKENS",
  "OUTPUT_TOKENS",
  "EXPERT_CALLS",
  "PREFETCH_BYTES",
  "TIERSET_ACTIVATIONS",
  "KV_BYTE_SECONDS",
);
export type Meter = keyof typeof Meter;
export const Granularity = enumOf("HOUR", "DAY", "MONTH");
export type Granularity = keyof typeof Granularity;

registerEnumType(Role, { name: "Role" });
registerEnumType(Placement, { name: "Placement" });
registerEnumType(TierMode, {
  name: "TierMode",
  description:
    "Fixed TierSet modes: FAST = hot tier only, BALANCED = hot + warm, DEEP = hot + warm + cold, MAX = every tier the tenant is entitled to",
});
registerEnumType(OverQuotaPolicy, { name: "OverQuotaPolicy" });
registerEnumType(CompletionStatus, { name: "CompletionStatus" });
registerEnumType(FinishReason, { name: "FinishReason" });
registerEnumType(Meter, { name: "Meter" });
registerEnumType(Granularity, { name: "Granularity" });
