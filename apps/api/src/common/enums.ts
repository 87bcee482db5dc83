import { registerEnumType } from "type-graphql";
import {
  COMPLETION_STATUSES,
  FINISH_REASONS,
  GRANULARITIES,
  METERS,
  OVER_QUOTA_POLICIES,
  PLACEMENTS,
  ROLES,
  TIER_MODES,
  enumObject,
} from "@lite/core";
import type * as Vocabulary from "@lite/core";

/**
 * The contract's enums, registered from the one vocabulary in `@lite/core` (type-graphql wants
 * enum-like objects; their values are the vocabulary's strings, which are Prisma's enum values).
 * Each name is both the object (for `@Field(() => Role)`) and the vocabulary's union type.
 */
export const Role = enumObject(ROLES);
export type Role = Vocabulary.Role;
export const Placement = enumObject(PLACEMENTS);
export type Placement = Vocabulary.Placement;
export const TierMode = enumObject(TIER_MODES);
export type TierMode = Vocabulary.TierMode;
export const OverQuotaPolicy = enumObject(OVER_QUOTA_POLICIES);
export type OverQuotaPolicy = Vocabulary.OverQuotaPolicy;
export const CompletionStatus = enumObject(COMPLETION_STATUSES);
export type CompletionStatus = Vocabulary.CompletionStatus;
export const FinishReason = enumObject(FINISH_REASONS);
export type FinishReason = Vocabulary.FinishReason;
export const Meter = enumObject(METERS);
export type Meter = Vocabulary.Meter;
export const Granularity = enumObject(GRANULARITIES);
export type Granularity = Vocabulary.Granularity;

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
