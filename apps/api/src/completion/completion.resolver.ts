import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Role } from "@lite/auth";
import { badInput } from "@lite/core";
import * as completions from "@lite/completions";
import { Allow, tenantScope } from "../auth/access";
import { guardedSubscribe } from "../auth/subscription";
import type { ApiContext } from "../context";
import { CompletionStatus } from "../common/enums";
import { Completion, CompletionConnection } from "./completion.type";
import { CompletionInput } from "./completion.input";
import { completionResources } from "./completion.resources";
import { orThrow } from "../tenant/tenancy.context";
import { TokenEvent } from "./token-event.type";

/**
 * Completion fields: the role check comes first (FORBIDDEN by role, `@Allow`), then
 * ownership (NOT_FOUND for another tenant's completion, the denial audited); the work is
 * libs/completions'. A refusal it returns is thrown by `orThrow` as its DomainError, which
 * errors.ts (the one mapper) turns into the GraphQL error and HTTP status.
 */
const TOKENS_ROLES: Role[] = ["ADMIN", "TENANT"];

/** A completion the caller may see: filtered by tenant for a TENANT (another tenant's: audited NOT_FOUND). */
export async function findOwnCompletion(ctx: ApiContext, id: string): Promise<completions.CompletionRow> {
  return orThrow(ctx, await completions.findCompletion(ctx.services.db, id, tenantScope(ctx)));
}

/**
 * The idempotency key: the input's, or the HTTP `Idempotency-Key` header's; both given must
 * be equal. libs/completions checks its shape (a bad header is refused naming the header).
 */
function idempotencyKeyOf(input: CompletionInput, ctx: ApiContext): string | null | undefined {
  const header = ctx.idempotencyKeyHeader;
  if (header === undefined) return input.idempotencyKey;
  const problem = completions.checkIdempotencyKey(header);
  if (problem) throw badInput("Idempotency-Key", `the header ${problem}`);
  if (input.idempotencyKey != null && input.idempotencyKey !== header) {
    throw badInput(completions.IDEMPOTENCY_KEY_FIELD, "differs from the Idempotency-Key header");
  }
  return header;
}

/** The GraphQL input as libs/completions' plain input. */
function toInput(input: CompletionInput, ctx: ApiContext): completions.CompletionInput {
  return {
    model: input.model,
    prompt: input.prompt,
    maxTokens: input.maxTokens,
    mode: input.mode,
    tiers: input.tiers,
    seed: input.seed,
    temperature: input.temperature,
    idempotencyKey: idempotencyKeyOf(input, ctx),
  };
}

@Resolver()
export class CompletionResolver {
  @Query(() => Completion, { nullable: true })
  @Allow("ADMIN", "TENANT")
  async completion(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Completion | null> {
    return completions.withLiveText(ctx.services.completions.streams, await findOwnCompletion(ctx, id));
  }

  @Query(() => CompletionConnection)
  @Allow("ADMIN", "TENANT")
  async completions(
    @Arg("first", () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Arg("status", () => CompletionStatus, { nullable: true }) status: CompletionStatus | null,
    @Ctx() ctx: ApiContext,
  ): Promise<CompletionConnection> {
    return orThrow(
      ctx,
      await completions.listCompletions(ctx.services.db, tenantScope(ctx), { first: first ?? 50, after, status }),
    );
  }

  @Mutation(() => Completion)
  @Allow("TENANT")
  async createCompletion(
    @Arg("input", () => CompletionInput) input: CompletionInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Completion> {
    const plain = toInput(input, ctx);
    return orThrow(ctx, await completions.createCompletion(completionResources(ctx), ctx.principal, plain));
  }

  @Mutation(() => Completion)
  @Allow("ADMIN", "TENANT")
  async cancelCompletion(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Completion> {
    const row = await findOwnCompletion(ctx, id);
    return completions.cancelCompletion(completionResources(ctx), ctx.principal, row);
  }

  @Subscription(() => TokenEvent, {
    description: "tokens of one completion, from `fromIndex` on; replays what was already generated",
    subscribe: guardedSubscribe<{ id: string; fromIndex: number }>(
      TOKENS_ROLES,
      "Subscription.completionTokens",
      async (args, ctx) => {
        const row = await findOwnCompletion(ctx, args.id);
        return orThrow(ctx, await completions.tokenEvents(ctx.services.completions.streams, row, args.fromIndex ?? 0));
      },
    ),
  })
  @Allow(...TOKENS_ROLES)
  completionTokens(
    @Root() event: TokenEvent,
    @Arg("id", () => ID) _id: string,
    @Arg("fromIndex", () => Int, { nullable: true, defaultValue: 0 }) _fromIndex: number,
  ): TokenEvent {
    return event;
  }
}
