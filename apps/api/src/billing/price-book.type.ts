import { Field, ID, InputType, ObjectType } from "type-graphql";
import { DateTimeScalar, DecimalScalar } from "../common/scalars";
import { Meter } from "../common/enums";

@ObjectType()
export class Price {
  @Field(() => Meter)
  meter!: Meter;

  @Field(() => String, { nullable: true })
  dimension!: string | null;

  @Field(() => DecimalScalar)
  unitPrice!: unknown;

  @Field(() => String, { description: "what one unit is, e.g. '1 token', '1 MiB'" })
  unit!: string;
}

@ObjectType()
export class PriceBook {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  currency!: string;

  @Field(() => DateTimeScalar)
  effectiveFrom!: Date;

  @Field(() => [Price])
  prices!: Price[];
}

@InputType()
export class PriceInput {
  @Field(() => Meter)
  meter!: Meter;

  @Field(() => String, { nullable: true })
  dimension?: string | null;

  @Field(() => DecimalScalar)
  unitPrice!: string;

  @Field(() => String)
  unit!: string;
}

@InputType()
export class PriceBookInput {
  @Field(() => String)
  currency!: string;

  @Field(() => DateTimeScalar)
  effectiveFrom!: Date;

  @Field(() => [PriceInput])
  prices!: PriceInput[];
}
