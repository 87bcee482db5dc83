import * as fs from "node:fs";
import * as path from "node:path";
import type { Logger } from "pino";
import type { PrismaClient } from "@lite/db";
import type { AuditSink } from "@lite/auth";
// Only the manifest modules: the API process never loads onnxruntime (libs/model's index does).
import { readManifest, type LoadedManifest } from "@lite/model/src/manifest-loader";
import { expertParams } from "@lite/model/src/manifest.schema";
import type { Placement } from "../common/enums";

/**
 * Model registration at API start: each `<MODEL_DIR>/<name>/manifest.json` (signature
 * verified) becomes a Model row and one Tier row per manifest tier, ids verbatim
 * (`default.t0`). Upserts, so every start and every API process may run it. Each model
 * registration is audited (`model.register`, OK or FAIL).
 */
export interface TierDescription {
  id: string;
  name: string;
  rank: number;
  placement: Placement;
  groups: number;
  expertsPerGroup: number;
  paramBytes: bigint;
  restricted: boolean;
  /** active expert parameters per token relative to the hot tier's */
  costWeight: number;
}

export interface ModelDescription {
  id: string;
  name: string;
  manifestSha256: string;
  isDefault: boolean;
  tiers: TierDescription[];
}

/** Same arithmetic as libs/model's runtime (model-runtime.ts), without loading onnxruntime. */
export function describeManifest(loaded: LoadedManifest, isDefault: boolean): ModelDescription {
  const m = loaded.manifest;
  const arch = m.architecture;
  const active = (t: (typeof m.tiers)[number]) =>
    t.routing.groupTopK * t.routing.expertTopK * expertParams(arch.dModel, t.expertWidth);
  const hot = m.tiers.find((t) => t.placement === "HOT") ?? [...m.tiers].sort((a, b) => a.rank - b.rank)[0];
  return {
    id: m.name,
    name: m.name,
    manifestSha256: loaded.manifestSha256,
    isDefault,
    tiers: m.tiers.map((t) => ({
      id: t.id,
      name: t.name,
      rank: t.rank,
      placement: t.placement,
      groups: t.groups,
      expertsPerGroup: t.expertsPerGroup,
      paramBytes: BigInt(arch.layers * t.groups * t.expertsPerGroup * expertParams(arch.dModel, t.expertWidth)) * 4n,
      restricted: t.restricted,
      costWeight: active(t) / active(hot),
    })),
  };
}

export async function registerModels(db: PrismaClient, audit: AuditSink, models: ModelDescription[]): Promise<void> {
  for (const model of models) {
    await db.$transaction(async (tx) => {
      if (model.isDefault)
        await tx.model.updateMany({ where: { isDefault: true, id: { not: model.id } }, data: { isDefault: false } });
      const data = { name: model.name, manifestSha256: model.manifestSha256, isDefault: model.isDefault };
      await tx.model.upsert({ where: { id: model.id }, create: { id: model.id, ...data }, update: data });
      for (const t of model.tiers) {
        const fields = {
          name: t.name,
          rank: t.rank,
          placement: t.placement,
          groups: t.groups,
          expertsPerGroup: t.expertsPerGroup,
          paramBytes: t.paramBytes,
          restricted: t.restricted,
          costWeight: t.costWeight,
        };
        await tx.tier.upsert({
          where: { id: t.id },
          create: { id: t.id, modelId: model.id, ...fields },
          update: fields,
        });
      }
    });
    await audit.record({
      actor: "system",
      action: "model.register",
      resource: `model:${model.id}`,
      decision: "OK",
      reason: `manifest ${model.manifestSha256.slice(0, 16)}; tiers ${model.tiers.map((t) => t.id).join(",")}`,
    });
  }
}

export interface RegisterFromDirOptions {
  modelDir: string;
  defaultModel: string;
  publicKey?: string;
  log?: Logger;
}

/** Registers every verifiable model under modelDir; a refused manifest is logged and audited as FAIL. */
export async function registerModelsFromDir(
  db: PrismaClient,
  audit: AuditSink,
  opts: RegisterFromDirOptions,
): Promise<string[]> {
  if (!fs.existsSync(opts.modelDir)) {
    opts.log?.warn({ modelDir: opts.modelDir }, "MODEL_DIR does not exist: no model registered");
    return [];
  }
  const names = fs
    .readdirSync(opts.modelDir, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        !d.name.includes(".building-") &&
        fs.existsSync(path.join(opts.modelDir, d.name, "manifest.json")),
    )
    .map((d) => d.name)
    .sort();
  const registered: string[] = [];
  for (const name of names) {
    let description: ModelDescription;
    try {
      description = describeManifest(
        readManifest(path.join(opts.modelDir, name), { publicKey: opts.publicKey }),
        name === opts.defaultModel,
      );
    } catch (e) {
      opts.log?.error({ err: e, model: name }, "model manifest refused");
      await audit.record({
        actor: "system",
        action: "model.register",
        resource: `model:${name}`,
        decision: "FAIL",
        reason: (e as Error).message.slice(0, 200),
      });
      continue;
    }
    await registerModels(db, audit, [description]);
    registered.push(description.id);
  }
  if (registered.length > 0 && !registered.includes(opts.defaultModel)) {
    opts.log?.warn(
      { defaultModel: opts.defaultModel, registered },
      "the default model is not among the registered models",
    );
  }
  return registered;
}
