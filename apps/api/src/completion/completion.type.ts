import { Field, ID, Int, ObjectType } from "type-graphql";
import { DateTimeScalar } from "../common/scalars";
import { CompletionStatus, FinishReason, TierMode } from "../common/enums";
import { PageInfo } from "../common/page-info.type";

@ObjectType()
export class Completion {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  tenantId!: string;

  @Field(() => ID)
  model!: string;

  @Field(() => CompletionStatus)
  status!: CompletionStatus;

  @Field(() => TierMode)
  mode!: TierMode;

  @Field(() => [ID], { description: "tiers actually active for this completion" })
  tierSet!: string[];

  @Field(() => Boolean, { description: "true when the quota policy cut the requested TierSet" })
  degraded!: boolean;

  @Field(() => String)
  seed!: string;

  @Field(() => Int)
  promptTokens!: number;

  @Field(() => Int)
  outputTokens!: number;

  @Field(() => String, { description: "the output generated so far" })
  text!: string;

  @Field(() => FinishReason, { nullable: true })
  finishReason!: FinishReason | null;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true })
  startedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true })
  finishedAt!: Date | null;
}

@ObjectType()
export class CompletionConnection {
  @Field(() => [Completion])
  nodes!: Completion[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
