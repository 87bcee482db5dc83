import { Field, ID, Int, ObjectType } from "type-graphql";
import { FinishReason } from "../common/enums";

@ObjectType()
export class TokenEvent {
  @Field(() => ID)
  completionId!: string;

  @Field(() => Int, { description: "0-based position in the output; a resumed stream repeats no index and skips none" })
  index!: number;

  @Field(() => Int)
  tokenId!: number;

  @Field(() => String)
  text!: string;

  @Field(() => Boolean)
  done!: boolean;

  @Field(() => FinishReason, { nullable: true })
  finishReason!: FinishReason | null;
}
