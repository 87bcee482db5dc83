import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { badInput, notFound } from "@lite/core";
import type { Role } from "@lite/auth";
import { Allow, requireOwner, tenantScope } from "../auth/access";
import { guardedSubscribe } from "../auth/subscription";
import type { ApiContext } from "../context";
import { CompletionStatus } from "../common/enums";
import { Completion, CompletionConnection } from "./completion.type";
import { CompletionInput } from "./completion.input";
import { TokenEvent } from "./token-event.type";
import * as completions from "./completion.service";

/**
 * Completion fields: the role and ownership checks come first (FORBIDDEN by role, then
 * NOT_FOUND for another tenant's completion); completion.service.ts does the work.
 */
const TOKENS_ROLES: Role[] = ["ADMIN", "TENANT"];

/** A completion the caller may see: filtered by tenant in the query for a TENANT. */
export async function findOwnCompletion(ctx: ApiContext, id: string) {
  const scope = tenantScope(ctx);
  const row = await ctx.services.db.completion.findFirst({ where: scope === null ? { id } : { id, tenantId: scope } });
  if (row) return row;
  if (scope !== null) {
    const other = await ctx.services.db.completion.findUnique({ where: { id }, select: { tenantId: true } });
    if (other) await requireOwner(ctx, other.tenantId, "completion", id);
  }
  throw notFound("completion", id);
}

/** Contract limits on a completion request that need no model or queue. */
export function checkCompletionInput(ctx: ApiContext, input: CompletionInput): void {
  const { MAX_PROMPT_BYTES, MAX_OUTPUT_TOKENS } = ctx.services.env;
  if (Buffer.byteLength(input.prompt, "utf8") > MAX_PROMPT_BYTES) {
    throw badInput("input.prompt", `must be at most ${MAX_PROMPT_BYTES} bytes`);
  }
  if (!Number.isInteger(input.maxTokens) || input.maxTokens < 1 || input.maxTokens > MAX_OUTPUT_TOKENS) {
    throw badInput("input.maxTokens", `must be from 1 to ${MAX_OUTPUT_TOKENS}`);
  }
  const t = input.temperature ?? 0;
  if (!Number.isFinite(t) || t < 0 || t > 2) throw badInput("input.temperature", "must be from 0 to 2");
}

@Resolver()
export class CompletionResolver {
  @Query(() => Completion, { nullable: true })
  @Allow("ADMIN", "TENANT")
  async completion(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Completion | null> {
    return completions.withLiveText(ctx, await findOwnCompletion(ctx, id));
  }

  @Query(() => CompletionConnection)
  @Allow("ADMIN", "TENANT")
  async completions(
    @Arg("first", () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Arg("status", () => CompletionStatus, { nullable: true }) status: CompletionStatus | null,
    @Ctx() ctx: ApiContext,
  ): Promise<CompletionConnection> {
    return completions.listCompletions(ctx, tenantScope(ctx), first ?? 50, after, status);
  }

  @Mutation(() => Completion)
  @Allow("TENANT")
  async createCompletion(
    @Arg("input", () => CompletionInput) input: CompletionInput,
    @Ctx() ctx: ApiContext,
  ): Promise<Completion> {
    checkCompletionInput(ctx, input);
    return completions.createCompletion(ctx, input);
  }

  @Mutation(() => Completion)
  @Allow("ADMIN", "TENANT")
  async cancelCompletion(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Completion> {
    return completions.cancelCompletion(ctx, await findOwnCompletion(ctx, id));
  }

  @Subscription(() => TokenEvent, {
    description: "tokens of one completion, from `fromIndex` on; replays what was already generated",
    subscribe: guardedSubscribe<{ id: string; fromIndex: number }>(
      TOKENS_ROLES,
      "Subscription.completionTokens",
      async (args, ctx) => {
        const row = await findOwnCompletion(ctx, args.id);
        return completions.tokenEvents(ctx, row, args.fromIndex ?? 0);
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
