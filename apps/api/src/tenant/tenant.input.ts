import { Field, ID, InputType, Int } from "type-graphql";
import { BigIntScalar } from "../common/scalars";
import { OverQuotaPolicy } from "../common/enums";

@InputType()
export class QuotaInput {
  @Field(() => BigIntScalar, { nullable: true })
  hotMemoryBytes?: bigint | null;

  @Field(() => BigIntScalar, { nullable: true })
  warmMemoryBytes?: bigint | null;

  @Field(() => BigIntScalar, { nullable: true })
  kvCacheBytes?: bigint | null;

  @Field(() => BigIntScalar, { nullable: true })
  prefetchBytesPerSecond?: bigint | null;

  @Field(() => Int, { nullable: true })
  maxOutstandingTokens?: number | null;

  @Field(() => Int, { nullable: true })
  maxConcurrentRequests?: number | null;

  @Field(() => Int, { nullable: true })
  requestsPerMinute?: number | null;

  @Field(() => Int, { nullable: true })
  tokensPerMinute?: number | null;

  @Field(() => OverQuotaPolicy, { nullable: true })
  overQuotaPolicy?: OverQuotaPolicy | null;
}

@InputType()
export class CreateTenantInput {
  @Field(() => String)
  name!: string;

  @Field(() => Int, { nullable: true, defaultValue: 1 })
  weight?: number | null;

  @Field(() => QuotaInput, { nullable: true })
  quota?: QuotaInput | null;

  @Field(() => [ID], { nullable: true })
  tierIds?: string[] | null;
}

@InputType()
export class UpdateTenantInput {
  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => Int, { nullable: true })
  weight?: number | null;
}
