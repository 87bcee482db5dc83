import * as fs from "node:fs";
import * as path from "node:path";
import type { PrismaClient } from "@lite/db";
import { readManifest, type LoadedManifest } from "./manifest-reader";
import { describeTiers, type TierDescription } from "./tier-description";

/**
 * Model registration at API start: each `<modelDir>/<name>/manifest.json` (signature
 * verified) becomes a Model row and one Tier row per manifest tier, ids verbatim
 * (`default.t0`). Upserts, so every start and every API process may run it. Each model
 * registration is audited (`model.register`, OK or FAIL).
 */
export interface ModelDescription {
  id: string;
  name: string;
  manifestSha256: string;
  isDefault: boolean;
  tiers: TierDescription[];
}

/** The writes registration makes: one transaction per model. */
export type RegistrationDb = Pick<PrismaClient, "$transaction">;

/** What registration audits (an AuditSink from @lite/auth fits). */
export interface RegistrationAudit {
  record(
    ...events: { actor: string; action: string; resource: string; decision: "OK" | "FAIL"; reason: string }[]
  ): Promise<void>;
}

/** Where refusals are reported (a pino logger fits). */
export interface RegistrationLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export function describeManifest(loaded: LoadedManifest, isDefault: boolean): ModelDescription {
  const m = loaded.manifest;
  return { id: m.name, name: m.name, manifestSha256: loaded.manifestSha256, isDefault, tiers: describeTiers(m) };
}

export async function registerModels(
  db: RegistrationDb,
  audit: RegistrationAudit,
  models: readonly ModelDescription[],
): Promise<void> {
  for (const model of models) {
    await db.$transaction(async (tx) => {
      // One default model: registering a default clears the flag on the others.
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
  /** trusted Ed25519 key (MODEL_PUBLIC_KEY); default: each model's own public-key.pem */
  publicKey?: string;
  log?: RegistrationLog;
}

/** Model directories under modelDir (those holding a manifest.json; half-built ones skipped), sorted. */
export function listModelNames(modelDir: string): string[] {
  return fs
    .readdirSync(modelDir, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        !d.name.includes(".building-") &&
        fs.existsSync(path.join(modelDir, d.name, "manifest.json")),
    )
    .map((d) => d.name)
    .sort();
}

/** Registers every verifiable model under modelDir; a refused manifest is logged and audited as FAIL. */
export async function registerModelsFromDir(
  db: RegistrationDb,
  audit: RegistrationAudit,
  opts: RegisterFromDirOptions,
): Promise<string[]> {
  if (!fs.existsSync(opts.modelDir)) {
    opts.log?.warn({ modelDir: opts.modelDir }, "MODEL_DIR does not exist: no model registered");
    return [];
  }
  const registered: string[] = [];
  for (const name of listModelNames(opts.modelDir)) {
    let description: ModelDescription;
    try {
      const loaded = readManifest(path.join(opts.modelDir, name), { publicKey: opts.publicKey });
      description = describeManifest(loaded, name === opts.defaultModel);
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
