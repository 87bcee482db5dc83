import { Field, ID, Int, ObjectType } from "type-graphql";
import { BigIntScalar } from "../common/scalars";
import { Placement } from "../common/enums";

@ObjectType()
export class Tier {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Int, { description: "0 for the smallest tier; cumulative TierSets include every lower rank" })
  rank!: number;

  @Field(() => Placement)
  placement!: Placement;

  @Field(() => Int)
  groups!: number;

  @Field(() => Int)
  expertsPerGroup!: number;

  @Field(() => BigIntScalar)
  paramBytes!: bigint;

  @Field(() => Boolean, { description: "needs an explicit grant before any tenant may activate it" })
  restricted!: boolean;

  @Field(() => ID, {
    nullable: true,
    description: "set for a tenant's private fine-tuned tier (encrypted at rest with that tenant's key)",
  })
  ownerTenantId!: string | null;

  /** not exposed: the model it belongs to (Model.tiers filters on it) */
  modelId!: string;
}

@ObjectType()
export class Model {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String)
  manifestSha256!: string;
}
