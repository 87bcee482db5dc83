import { Field, ID, InputType } from "type-graphql";

@InputType()
export class PrivateTierInput {
  @Field(() => ID)
  tenantId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => ID, { description: "the public tier whose experts are fine-tuned into the private tier" })
  baseTierId!: string;
}
