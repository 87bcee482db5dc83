import * as path from "node:path";
import * as ort from "onnxruntime-node";
import type { Clock } from "@lite/core";
import { createByteTokenizer, samplableTokens, type Tokenizer } from "./byte-tokenizer";
import { DecodeBatchImpl, type DecodeBatch } from "./decode-batch";
import { VerifiedFileExpertStore, type ExpertRef, type ExpertStore, type ExpertStoreContext } from "./expert-store";
import { ExpertLoads } from "./expert-loads";
import { HserRouter } from "./hser-router";
import { KvLedger } from "./kv-ledger";
import type { ModelCore } from "./model-core";
import {
  KV_BLOCK_TOKENS,
  describeTiers,
  readManifest,
  readVerifiedFile,
  type Manifest,
  type TierDescription,
} from "@lite/manifest";
import { attentionHelper } from "./attention-helper";
import { buildAttentionModel } from "./onnx-builder";
import { TimingDefence } from "./timing-defence";

export interface ModelRuntimeOptions {
  /** directory holding `<modelName>/manifest.json` (MODEL_DIR; default var/models in apps) */
  modelDir: string;
  modelName: string;
  /** trusted Ed25519 key, PEM or base64 DER (MODEL_PUBLIC_KEY); default: public-key.pem beside the manifest */
  publicKey?: string;
  /** onnxruntime execution providers in preference order; default ["cpu"] */
  executionProviders?: string[];
  /** onnxruntime intra-op threads per session; default 1 */
  intraOpThreads?: number;
  /** hash every expert file at load instead of on first use; default false */
  verifyAllHashes?: boolean;
  /** positions per KV block; default 16 (KV_BLOCK_TOKENS, what the API's admission counts with) */
  kvBlockTokens?: number;
  /**
   * per-tenant KV quotas (kv-ledger.ts); one ledger shared by every model of a worker, since
   * kvCacheBytes bounds a tenant's KV in the whole worker. Default: a ledger of its own, no quota.
   */
  kvLedger?: KvLedger;
  /** replaces the plain verified-file store (the expert cache plugs in here) */
  expertStore?: (ctx: ExpertStoreContext) => ExpertStore;
  /**
   * A decode step parks the sequences whose expert is not HOT (its load runs off the step)
   * and goes on with the others: the worker's shared batch. Default false: the step waits
   * for the load, as a tool or a single-user run may.
   */
  parkColdExperts?: boolean;
  /**
   * Pads a tenant's first use of a resident expert to a load's time (TIMING_DEFENCE,
   * timing-defence.ts); default true. It holds tokens back, so it needs `parkColdExperts`:
   * without it nothing is padded.
   */
  timingDefence?: boolean;
  /** the clock of the timing defence's holds, ms (default Date.now); tests pass a manual one */
  clock?: Clock;
  /** how the timing defence waits out a first use's estimate (default a timer); tests pass a gated one */
  defenceSleep?: (ms: number) => Promise<void>;
  /** told each tenant's padded first uses as the timing defence counts them (a per-tenant counter metric) */
  onPaddedFirstUses?: (tenantId: string, count: number) => void;
}

/** A tier as the runtime routes it: the manifest library's description, computed once there. */
export type TierInfo = TierDescription;

export interface ModelRuntime {
  readonly name: string;
  readonly manifestSha256: string;
  readonly tiers: TierInfo[];
  readonly maxContextTokens: number;
  readonly tokenizer: Tokenizer;
  /** tiers present in the manifest but unknown to this reader (skipped) */
  readonly ignoredTiers: string[];
  /** the verified manifest, for tools and tests */
  readonly manifest: Manifest;
  /** expert refs by tier id, then layer, then group × expertsPerGroup + expert */
  expertRefs(tierId: string): ExpertRef[][];
  /** the timing defence: whether it pads, its padded first uses per tenant (a metric), its per-tier estimates */
  readonly timingDefence: Pick<TimingDefence, "enabled" | "paddedFirstUses"> & { estimateMs(tierId: string): number };
  /** the KV ledger its batches charge: KV bytes per tenant, pauses */
  readonly kv: Pick<KvLedger, "bytesByTenant" | "pauses">;
  createBatch(): DecodeBatch;
  close(): Promise<void>;
}

export async function loadModel(opts: ModelRuntimeOptions): Promise<ModelRuntime> {
  const root = path.join(opts.modelDir, opts.modelName);
  const loaded = readManifest(root, { publicKey: opts.publicKey, verifyAllHashes: opts.verifyAllHashes });
  const m = loaded.manifest;
  const arch = m.architecture;
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: opts.executionProviders ?? ["cpu"],
    intraOpNumThreads: opts.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
  };
  const session = async (rel: string) => {
    const entry = loaded.files.get(rel);
    if (!entry) throw new Error(`${rel} not in manifest files`); // checked by the loader already
    return ort.InferenceSession.create(readVerifiedFile(root, entry), sessionOptions);
  };

  // Started now, not by the first replay's attention (a thread takes tens of ms to start).
  attentionHelper();
  const tiers: TierInfo[] = describeTiers(m);
  const experts = m.tiers.map((t) =>
    t.experts.map((row, layer) =>
      row.map((rel, slot): ExpertRef => {
        const group = Math.floor(slot / t.expertsPerGroup);
        const expert = slot % t.expertsPerGroup;
        return {
          key: `${t.id}/l${layer}/g${group}/e${expert}`,
          name: `${t.id}/g${group}/e${expert}`,
          tierId: t.id,
          layer,
          group,
          expert,
          file: loaded.files.get(rel)!,
        };
      }),
    ),
  );
  const router = new HserRouter(
    m.tiers.map((t, index) => ({
      index,
      groups: t.groups,
      expertsPerGroup: t.expertsPerGroup,
      groupTopK: t.routing.groupTopK,
      expertTopK: t.routing.expertTopK,
      columns: t.routerColumns,
    })),
    m.routing.tierTopK,
    m.routing.scoreFractionBits,
  );
  const storeCtx = { root, sessionOptions };
  const store = opts.expertStore ? opts.expertStore(storeCtx) : new VerifiedFileExpertStore(storeCtx);
  const parkColdExperts = opts.parkColdExperts ?? false;
  const defence = new TimingDefence({
    enabled: parkColdExperts && (opts.timingDefence ?? true),
    clock: opts.clock,
    sleep: opts.defenceSleep,
    onPaddedFirstUses: opts.onPaddedFirstUses,
  });
  const core: ModelCore = {
    arch,
    tiers,
    tierIndex: new Map(tiers.map((t, i) => [t.id, i])),
    experts,
    router,
    store,
    parkColdExperts,
    loads: new ExpertLoads(store, defence.estimates),
    defence,
    embedding: await session(m.dense.embedding),
    layers: await Promise.all(
      m.dense.layers.map(async (l) => ({
        qkv: await session(l.qkv),
        attnOut: await session(l.attnOut),
        router: await session(l.router),
      })),
    ),
    lmHead: await session(m.dense.lmHead),
    attention: await ort.InferenceSession.create(buildAttentionModel(arch.dModel, arch.heads), sessionOptions),
    tokenizer: createByteTokenizer(arch.bosToken, arch.eosToken),
    samplable: samplableTokens(arch.eosToken),
    kvBlockTokens: opts.kvBlockTokens ?? KV_BLOCK_TOKENS,
    kv: opts.kvLedger ?? new KvLedger(),
  };
  let closed = false;
  return {
    name: m.name,
    manifestSha256: loaded.manifestSha256,
    tiers,
    maxContextTokens: arch.maxContextTokens,
    tokenizer: core.tokenizer,
    ignoredTiers: loaded.ignoredTiers,
    manifest: m,
    expertRefs: (tierId) => {
      const i = core.tierIndex.get(tierId);
      if (i === undefined) throw new Error(`unknown tier ${tierId}`);
      return experts[i];
    },
    timingDefence: {
      enabled: defence.enabled,
      paddedFirstUses: (tenantId) => defence.paddedFirstUses(tenantId),
      estimateMs: (tierId) => defence.estimates.estimateMs(tierId),
    },
    kv: core.kv,
    createBatch: () => {
      if (closed) throw new Error("model runtime is closed");
      return new DecodeBatchImpl(core);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await core.store.close();
      const dense = [
        core.embedding,
        core.lmHead,
        core.attention,
        ...core.layers.flatMap((l) => [l.qkv, l.attnOut, l.router]),
      ];
      await Promise.all(dense.map((s) => s.release()));
    },
  };
}
