import { Field, ID, ObjectType } from "type-graphql";
import { DateTimeScalar } from "../common/scalars";
import { Role } from "../common/enums";

@ObjectType()
export class ApiKey {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { description: "the first characters of the key, safe to display" })
  prefix!: string;

  @Field(() => Role)
  role!: Role;

  @Field(() => ID, { nullable: true })
  tenantId!: string | null;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true })
  lastUsedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true })
  revokedAt!: Date | null;
}

@ObjectType()
export class CreatedApiKey {
  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field(() => String, { description: "the whole key; returned once, stored only as a hash" })
  secret!: string;
}
