import { Field, ID, Int, ObjectType } from "type-graphql";
import { BigIntScalar, DateTimeScalar } from "../common/scalars";
import { OverQuotaPolicy } from "../common/enums";
import { PageInfo } from "../common/page-info.type";
import { CreatedApiKey } from "../api-key/api-key.type";

@ObjectType()
export class Quota {
  @Field(() => BigIntScalar, {
    description: "expert bytes resident and ready to run (HOT) charged to the tenant, in each worker process",
  })
  hotMemoryBytes!: bigint;

  @Field(() => BigIntScalar, {
    description: "expert bytes held verified in RAM (WARM) charged to the tenant, in each worker process",
  })
  warmMemoryBytes!: bigint;

  @Field(() => BigIntScalar, {
    description: "KV-cache bytes of the tenant's live sequences, in each worker process",
  })
  kvCacheBytes!: bigint;

  @Field(() => BigIntScalar, {
    description:
      "bytes per second that prefetch and loads may read from WARM/COLD storage on the tenant's behalf, in each worker process",
  })
  prefetchBytesPerSecond!: bigint;

  @Field(() => Int, { description: "tokens admitted but not yet generated, summed over the tenant's live completions" })
  maxOutstandingTokens!: number;

  @Field(() => Int)
  maxConcurrentRequests!: number;

  @Field(() => Int)
  requestsPerMinute!: number;

  @Field(() => Int)
  tokensPerMinute!: number;

  @Field(() => OverQuotaPolicy)
  overQuotaPolicy!: OverQuotaPolicy;
}

/** Fields quota, tiers, apiKeys, usage and metrics are resolved by TenantFieldsResolver. */
@ObjectType()
export class Tenant {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Int, { description: "share under weighted fair queueing" })
  weight!: number;

  @Field(() => Boolean)
  suspended!: boolean;

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}

@ObjectType()
export class TenantConnection {
  @Field(() => [Tenant])
  nodes!: Tenant[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  @Field(() => Int)
  totalCount!: number;
}

@ObjectType()
export class CreateTenantPayload {
  @Field(() => Tenant)
  tenant!: Tenant;

  @Field(() => CreatedApiKey)
  apiKey!: CreatedApiKey;
}
