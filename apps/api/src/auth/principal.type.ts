import { Field, ID, ObjectType } from "type-graphql";
import { Role } from "../common/enums";
import { Tenant } from "../tenant/tenant.type";

@ObjectType("Principal")
export class PrincipalType {
  @Field(() => Role)
  role!: Role;

  @Field(() => ID)
  apiKeyId!: string;

  @Field(() => Tenant, { nullable: true })
  tenant!: Tenant | null;
}
