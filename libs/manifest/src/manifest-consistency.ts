import { ManifestError } from "./manifest.errors";
import type { Manifest } from "./manifest.schema";
import { tierParams } from "./tier-description";

/**
 * What the schema cannot say alone: attention heads split dModel into widths the decode
 * loop handles (multiples of 4), one dense entry per layer, every referenced file listed,
 * tier ids unique, each tier within its parameter budget, expert paths [layer][slot].
 */
export function checkConsistency(m: Manifest): void {
  const listed = new Set(m.files.map((f) => f.path));
  const requireListed = (p: string, field: string) => {
    if (!listed.has(p))
      throw new ManifestError("MANIFEST_INVALID", `manifest field ${field}: ${p} is not in files`, { field, file: p });
  };
  const a = m.architecture;
  if (a.dModel % a.heads !== 0 || (a.dModel / a.heads) % 4 !== 0) {
    throw new ManifestError(
      "MANIFEST_INVALID",
      "manifest field architecture.heads: dModel / heads must be a whole multiple of 4",
      { field: "architecture.heads" },
    );
  }
  if (m.dense.layers.length !== a.layers) {
    throw new ManifestError("MANIFEST_INVALID", "manifest field dense.layers: one entry per layer expected", {
      field: "dense.layers",
    });
  }
  requireListed(m.dense.embedding, "dense.embedding");
  requireListed(m.dense.lmHead, "dense.lmHead");
  m.dense.layers.forEach((l, i) => {
    requireListed(l.qkv, `dense.layers.${i}.qkv`);
    requireListed(l.attnOut, `dense.layers.${i}.attnOut`);
    requireListed(l.router, `dense.layers.${i}.router`);
  });
  const ids = new Set<string>();
  m.tiers.forEach((t, i) => {
    const field = `tiers.${i}`;
    if (ids.has(t.id))
      throw new ManifestError("MANIFEST_INVALID", `manifest field ${field}.id: duplicate ${t.id}`, {
        field: `${field}.id`,
      });
    ids.add(t.id);
    const params = tierParams(a, t);
    if (params > t.paramBudget) {
      throw new ManifestError(
        "TIER_OVER_BUDGET",
        `manifest field ${field}.paramBudget: tier ${t.id} holds ${params} expert parameters, over its budget of ${t.paramBudget}`,
        { field: `${field}.paramBudget` },
      );
    }
    if (t.experts.length !== a.layers || t.experts.some((row) => row.length !== t.groups * t.expertsPerGroup)) {
      throw new ManifestError(
        "MANIFEST_INVALID",
        `manifest field ${field}.experts: expected [layers][groups × expertsPerGroup] paths`,
        { field: `${field}.experts` },
      );
    }
    t.experts.forEach((row, l) => row.forEach((p, j) => requireListed(p, `${field}.experts.${l}.${j}`)));
  });
}

/** The dense files (embedding, LM head, every layer's projections and router): hashed at every load. */
export function denseFiles(m: Manifest): string[] {
  return [m.dense.embedding, m.dense.lmHead, ...m.dense.layers.flatMap((l) => [l.qkv, l.attnOut, l.router])];
}
