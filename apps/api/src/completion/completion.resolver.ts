import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { badInput, notFound, notImplemented } from "@lite/core";
import { checkFirst } from "@lite/db";
import type { Role } from "@lite/auth";
import { Allow, requireOwner, tenantScope } from "../auth/access";
import { guardedSubscribe } from "../auth/subscription";
import type { ApiContext } from "../context";
import { CompletionStatus } from "../common/enums";
import { Completion, CompletionConnection } from "./completion.type";
import { CompletionInput } from "./completion.input";
import { TokenEvent } from "./token-event.type";

/**
 * Completion fields: the role and ownership checks are final; the bodies after them
 * answer NOT_IMPLEMENTED until the completions work replaces them.
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
    await findOwnCompletion(ctx, id);
    throw notImplemented("completion");
  }

  @Query(() => CompletionConnection)
  @Allow("ADMIN", "TENANT")
  async completions(
    @Arg("first", () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg("after", () => String, { nullable: true }) _after: string | null,
    @Arg("status", () => CompletionStatus, { nullable: true }) _status: CompletionStatus | null,
  ): Promise<CompletionConnection> {
    checkFirst(first ?? 50);
    throw notImplemented("completions");
  }

  @Mutation(() => Completion)
  @Allow("TENANT")
  async createCompletion(@Arg("input", () => CompletionInput) input: CompletionInput, @Ctx() ctx: ApiContext): Promise<Completion> {
    checkCompletionInput(ctx, input);
    throw notImplemented("createCompletion");
  }

  @Mutation(() => Completion)
  @Allow("ADMIN", "TENANT")
  async cancelCompletion(@Arg("id", () => ID) id: string, @Ctx() ctx: ApiContext): Promise<Completion> {
    await findOwnCompletion(ctx, id);
    throw notImplemented("cancelCompletion");
  }

  @Subscription(() => TokenEvent, {
    description: "tokens of one completion, from `fromIndex` on; replays what was already generated",
    subscribe: guardedSubscribe<{ id: string; fromIndex: number }>(TOKENS_ROLES, "Subscription.completionTokens", async (args, ctx) => {
      await findOwnCompletion(ctx, args.id);
      throw notImplemented("completionTokens");
    }),
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
