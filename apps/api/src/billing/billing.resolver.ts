import { Arg, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import { badInput, notImplemented } from "@lite/core";
import { actorOf } from "@lite/auth";
import { createPriceBook, currentPriceBook, ensureDefaultPriceBook } from "@lite/billing";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { requireTenant } from "../catalog/catalog.resolver";
import { Invoice, PriceBook, PriceBookInput } from "./price-book.type";

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

@Resolver()
export class BillingResolver {
  @Query(() => PriceBook)
  @Allow("ADMIN", "FINANCE", "TENANT")
  async priceBook(@Ctx() ctx: ApiContext): Promise<PriceBook> {
    const { db, clock } = ctx.services;
    const now = new Date(clock.nowMs());
    let book = await currentPriceBook(db, now);
    if (!book) {
      await ensureDefaultPriceBook(db);
      book = await currentPriceBook(db, now);
    }
    if (!book) throw new Error("no price book in force (every book starts in the future)");
    return book;
  }

  @Mutation(() => PriceBook)
  @Allow("ADMIN", "FINANCE")
  async setPriceBook(
    @Arg("input", () => PriceBookInput) input: PriceBookInput,
    @Ctx() ctx: ApiContext,
  ): Promise<PriceBook> {
    const book = await createPriceBook(ctx.services.db, {
      currency: input.currency,
      effectiveFrom: input.effectiveFrom,
      prices: input.prices.map((p) => ({
        meter: p.meter,
        dimension: p.dimension ?? null,
        unitPrice: p.unitPrice,
        unit: p.unit,
      })),
    });
    await ctx.services.audit.record({
      actor: actorOf(ctx.principal),
      action: "pricebook.set",
      resource: `pricebook:${book.id}`,
      decision: "OK",
      reason: `${book.currency} from ${book.effectiveFrom.toISOString()}`,
    });
    return book;
  }

  @Query(() => Invoice)
  @Allow("ADMIN", "FINANCE", "TENANT")
  async invoice(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("period", () => String) period: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Invoice> {
    await requireTenant(ctx, tenantId);
    if (!PERIOD.test(period)) throw badInput("period", "must be YYYY-MM");
    throw notImplemented("invoice");
  }

  @Query(() => [Invoice])
  @Allow("ADMIN", "FINANCE")
  async invoices(@Arg("period", () => String) period: string): Promise<Invoice[]> {
    if (!PERIOD.test(period)) throw badInput("period", "must be YYYY-MM");
    throw notImplemented("invoices");
  }
}
