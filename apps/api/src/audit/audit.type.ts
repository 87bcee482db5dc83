import { Field, ID, ObjectType } from "type-graphql";
import { BigIntScalar, DateTimeScalar } from "../common/scalars";
import { PageInfo } from "../common/page-info.type";

@ObjectType()
export class AuditEvent {
  @Field(() => BigIntScalar)
  seq!: bigint;

  @Field(() => DateTimeScalar)
  at!: Date;

  @Field(() => ID, { nullable: true })
  tenantId!: string | null;

  @Field(() => String)
  actor!: string;

  @Field(() => String)
  action!: string;

  @Field(() => String)
  resource!: string;

  @Field(() => String, { description: "ALLOW or DENY for access decisions, OK or FAIL for operations" })
  decision!: string;

  @Field(() => String, { nullable: true })
  reason!: string | null;

  @Field(() => String, { description: "hash chaining this entry to the previous one" })
  hash!: string;
}

@ObjectType()
export class AuditConnection {
  @Field(() => [AuditEvent])
  nodes!: AuditEvent[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
