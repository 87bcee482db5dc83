import { Field, Float, ID, InputType, Int } from "type-graphql";
import { TierMode } from "../common/enums";

@InputType()
export class CompletionInput {
  @Field(() => ID, { nullable: true, description: "defaults to the deployment's default model" })
  model?: string | null;

  @Field(() => String)
  prompt!: string;

  @Field(() => Int, { defaultValue: 64 })
  maxTokens!: number;

  @Field(() => TierMode, { nullable: true, defaultValue: TierMode.BALANCED })
  mode?: TierMode | null;

  @Field(() => [ID], {
    nullable: true,
    description: "explicit tiers instead of a mode; each must be granted to the tenant",
  })
  tiers?: string[] | null;

  @Field(() => String, { nullable: true, description: "same seed, prompt and TierSet give the same output" })
  seed?: string | null;

  @Field(() => Float, { nullable: true, defaultValue: 0 })
  temperature?: number | null;

  @Field(() => String, {
    nullable: true,
    description:
      "1-128 printable ASCII characters, scoped to the tenant: a retry with the same key within IDEMPOTENCY_TTL_HOURS (24 h) returns the same completion, admitted, queued and billed once; the same key with another request is BAD_USER_INPUT (reason CONFLICT). Over HTTP the `Idempotency-Key` header does the same; both given must be equal",
  })
  idempotencyKey?: string | null;
}
