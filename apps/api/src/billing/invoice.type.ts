import { Field, ID, ObjectType, registerEnumType } from "type-graphql";
import { INVOICE_STATUSES, type InvoiceStatus as InvoiceStatusValue } from "@lite/billing";
import { BigIntScalar, DateTimeScalar, DecimalScalar } from "../common/scalars";
import { Meter } from "../common/enums";

/** DRAFT (computed on each read, may change) or ISSUED (frozen); the values are libs/billing's. */
export const InvoiceStatus = Object.fromEntries(INVOICE_STATUSES.map((s) => [s, s])) as {
  [K in InvoiceStatusValue]: K;
};
registerEnumType(InvoiceStatus, {
  name: "InvoiceStatus",
  description:
    "DRAFT: computed from usage on each read (the period is open, or closed and not issued yet); ISSUED: frozen",
});

@ObjectType()
export class InvoiceLine {
  @Field(() => Meter)
  meter!: Meter;

  @Field(() => String, { nullable: true })
  dimension!: string | null;

  @Field(() => BigIntScalar)
  quantity!: bigint;

  @Field(() => DecimalScalar)
  unitPrice!: string;

  @Field(() => DecimalScalar, {
    description: "quantity × unitPrice rounded half-even to the currency's minor unit",
  })
  amount!: string;

  @Field(() => String, { description: "YYYY-MM: the month the usage occurred in" })
  usagePeriod!: string;

  @Field(() => Boolean, {
    description:
      "true for usage of an earlier, already issued period that was recorded after it was issued (usagePeriod names it)",
  })
  adjustment!: boolean;

  @Field(() => ID, { nullable: true, description: "the price book in force when the usage occurred" })
  priceBookId!: string | null;
}

@ObjectType()
export class Invoice {
  @Field(() => ID)
  tenantId!: string;

  @Field(() => String)
  tenantName!: string;

  @Field(() => String, { description: "YYYY-MM" })
  period!: string;

  @Field(() => String)
  currency!: string;

  @Field(() => [InvoiceLine])
  lines!: InvoiceLine[];

  @Field(() => DecimalScalar, { description: "the sum of the lines' amounts" })
  total!: string;

  @Field(() => InvoiceStatus)
  status!: InvoiceStatusValue;

  @Field(() => DateTimeScalar, { nullable: true, description: "when the period was issued; null for a draft" })
  issuedAt!: Date | null;
}
