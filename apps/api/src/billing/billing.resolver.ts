import { Arg, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import { invoiceForCaller, invoicesForCaller, priceBookInForce, setPriceBook } from "@lite/billing";
import { Allow } from "../auth/access";
import type { ApiContext } from "../context";
import { orThrow, requireTenant } from "../tenant/tenancy.context";
import { Invoice } from "./invoice.type";
import { PriceBook, PriceBookInput } from "./price-book.type";

@Resolver()
export class BillingResolver {
  @Query(() => PriceBook)
  @Allow("ADMIN", "FINANCE", "TENANT")
  async priceBook(@Ctx() ctx: ApiContext): Promise<PriceBook> {
    return priceBookInForce(ctx.services.db, new Date(ctx.services.clock.nowMs()));
  }

  @Mutation(() => PriceBook)
  @Allow("ADMIN", "FINANCE")
  async setPriceBook(
    @Arg("input", () => PriceBookInput) input: PriceBookInput,
    @Ctx() ctx: ApiContext,
  ): Promise<PriceBook> {
    const spec = {
      currency: input.currency,
      effectiveFrom: input.effectiveFrom,
      prices: input.prices.map((p) => ({
        meter: p.meter,
        dimension: p.dimension ?? null,
        unitPrice: p.unitPrice,
        unit: p.unit,
      })),
    };
    return orThrow(ctx, await setPriceBook({ db: ctx.services.db, audit: ctx.services.audit }, ctx.principal, spec));
  }

  @Query(() => Invoice)
  @Allow("ADMIN", "FINANCE", "TENANT")
  async invoice(
    @Arg("tenantId", () => ID) tenantId: string,
    @Arg("period", () => String) period: string,
    @Ctx() ctx: ApiContext,
  ): Promise<Invoice> {
    await requireTenant(ctx, tenantId);
    const { db, audit, clock } = ctx.services;
    const now = new Date(clock.nowMs());
    return orThrow(ctx, await invoiceForCaller({ db, audit }, ctx.principal, tenantId, period, now));
  }

  @Query(() => [Invoice])
  @Allow("ADMIN", "FINANCE")
  async invoices(@Arg("period", () => String) period: string, @Ctx() ctx: ApiContext): Promise<Invoice[]> {
    const { db, audit, clock } = ctx.services;
    return orThrow(ctx, await invoicesForCaller({ db, audit }, ctx.principal, period, new Date(clock.nowMs())));
  }
}
