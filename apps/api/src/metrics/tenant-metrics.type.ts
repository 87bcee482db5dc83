import { Field, Float, Int, ObjectType } from "type-graphql";
import { BigIntScalar } from "../common/scalars";

@ObjectType()
export class TenantMetrics {
  @Field(() => Int)
  windowSeconds!: number;

  @Field(() => Int)
  requests!: number;

  @Field(() => BigIntScalar)
  outputTokens!: bigint;

  @Field(() => Float, { nullable: true })
  ttftP50Ms!: number | null;

  @Field(() => Float, { nullable: true })
  ttftP99Ms!: number | null;

  @Field(() => Float, { nullable: true })
  interTokenP50Ms!: number | null;

  @Field(() => Float, { nullable: true })
  interTokenP99Ms!: number | null;

  @Field(() => BigIntScalar)
  hotBytes!: bigint;

  @Field(() => BigIntScalar)
  warmBytes!: bigint;

  @Field(() => BigIntScalar)
  kvBytes!: bigint;

  @Field(() => Float, { nullable: true })
  expertHitRate!: number | null;

  @Field(() => BigIntScalar)
  prefetchBytes!: bigint;

  @Field(() => Int)
  throttled!: number;

  @Field(() => Int)
  evictions!: number;
}
