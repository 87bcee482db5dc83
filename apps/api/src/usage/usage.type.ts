import { Field, ObjectType } from "type-graphql";
import { BigIntScalar, DateTimeScalar } from "../common/scalars";
import { Meter } from "../common/enums";

@ObjectType()
export class UsageTotal {
  @Field(() => Meter)
  meter!: Meter;

  @Field(() => String, {
    nullable: true,
    description: "tier id for EXPERT_CALLS, mode for TIERSET_ACTIVATIONS, null otherwise",
  })
  dimension!: string | null;

  @Field(() => BigIntScalar)
  quantity!: bigint;
}

@ObjectType()
export class UsageBucket {
  @Field(() => DateTimeScalar)
  start!: Date;

  @Field(() => Meter)
  meter!: Meter;

  @Field(() => String, { nullable: true })
  dimension!: string | null;

  @Field(() => BigIntScalar)
  quantity!: bigint;
}
