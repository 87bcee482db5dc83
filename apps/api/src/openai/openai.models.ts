import type { Request, Response } from "express";
import { DomainError } from "@lite/core";
import type { Principal } from "@lite/auth";
import type { Prisma } from "@lite/db";
import { visibleTiersWhere } from "@lite/tenancy";
import type { ApiServices } from "../services";

/**
 * GET /v1/models and /v1/models/{id}: the models the caller may use. A TENANT key sees a
 * model when at least one of its tiers is visible to the tenant (granted, or its own
 * private tier — libs/tenancy visibleTiersWhere, the rule GraphQL's `tiers` uses); ADMIN and
 * FINANCE see every model. `id` is the model's name (its `cmp_`-style id is accepted too);
 * another tenant's model is answered 404 like a missing one. The `lite` field lists the
 * tiers the caller may use.
 */
export function listModelsHandler(services: ApiServices) {
  return async (_req: Request, res: Response): Promise<void> => {
    const scope = scopeOf(res.locals.principal as Principal);
    const models = await visibleModels(services, scope, {});
    res.json({ object: "list", data: models.map(modelBody) });
  };
}

export function getModelHandler(services: ApiServices) {
  return async (req: Request, res: Response): Promise<void> => {
    const scope = scopeOf(res.locals.principal as Principal);
    const id = String(req.params.id);
    const [model] = await visibleModels(services, scope, { OR: [{ name: id }, { id }] });
    if (!model) throw new DomainError("NOT_FOUND", `model ${id} not found`, { field: "model" });
    res.json(modelBody(model));
  };
}

function scopeOf(p: Principal): string | null {
  return p.role === "TENANT" ? (p.tenantId ?? "") : null;
}

async function visibleModels(services: ApiServices, scope: string | null, where: Prisma.ModelWhereInput) {
  const tiers = visibleTiersWhere(scope);
  return services.db.model.findMany({
    where: scope === null ? where : { AND: [where, { tiers: { some: tiers } }] },
    include: { tiers: { where: tiers, select: { id: true }, orderBy: { rank: "asc" } } },
    orderBy: [{ isDefault: "desc" }, { name: "asc" }],
  });
}

function modelBody(m: { id: string; name: string; isDefault: boolean; registeredAt: Date; tiers: { id: string }[] }) {
  return {
    id: m.name,
    object: "model",
    created: Math.floor(m.registeredAt.getTime() / 1000),
    owned_by: "lite",
    lite: { id: m.id, default: m.isDefault, tiers: m.tiers.map((t) => t.id) },
  };
}
