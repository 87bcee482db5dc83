import { Field, Float, Int, ObjectType } from "type-graphql";

/** A tenant's live load, for dashboards (an extension of the contract's Tenant). */
@ObjectType({ description: "a tenant's live load: its own queue and what admission holds for it" })
export class TenantQueue {
  @Field(() => Int, {
    nullable: true,
    description: "jobs waiting in the tenant's own queue; null under SCHEDULER_MODE=fifo (one queue for everyone)",
  })
  waiting!: number | null;

  @Field(() => Int, {
    nullable: true,
    description: "jobs of the tenant a worker is running; null under SCHEDULER_MODE=fifo",
  })
  active!: number | null;

  @Field(() => Int, { description: "admitted completions not yet finished (against quota.maxConcurrentRequests)" })
  concurrentRequests!: number;

  @Field(() => Float, {
    description: "cost-weighted tokens admitted and not yet generated (against quota.maxOutstandingTokens)",
  })
  outstandingTokens!: number;
}
