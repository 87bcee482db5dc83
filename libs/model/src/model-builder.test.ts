import * as fs from "node:fs";
import * as path from "node:path";
import { expertParams } from "@lite/manifest";
import { PRESETS } from "./model-presets";
import { buildTinyModel, openTiny, type TinyModel } from "./testing/tiny-model.fixture";

function listFiles(root: string): string[] {
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

describe("model builder", () => {
  let a: TinyModel;
  let b: TinyModel;
  beforeAll(() => {
    a = buildTinyModel();
    b = buildTinyModel();
  });
  afterAll(() => {
    a.cleanup();
    b.cleanup();
  });

  it("builds the tiny preset in under 2 s", () => {
    expect(a.build.durationMs).toBeLessThan(2000);
    expect(b.build.durationMs).toBeLessThan(2000);
  });

  it("is deterministic: same preset → byte-identical files and manifest hash (signing keys differ)", () => {
    expect(a.build.manifestSha256).toBe(b.build.manifestSha256);
    const files = listFiles(a.root).filter((f) => f !== "manifest.sig" && f !== "public-key.pem");
    expect(files).toEqual(listFiles(b.root).filter((f) => f !== "manifest.sig" && f !== "public-key.pem"));
    expect(files.length).toBeGreaterThan(50);
    for (const f of files)
      expect(fs.readFileSync(path.join(a.root, f)).equals(fs.readFileSync(path.join(b.root, f)))).toBe(true);
    // Two fresh model dirs → two fresh keypairs, so the signatures differ.
    expect(fs.readFileSync(path.join(a.root, "public-key.pem"), "utf8")).not.toBe(
      fs.readFileSync(path.join(b.root, "public-key.pem"), "utf8"),
    );
  });

  it("lays out manifest, signature, public key beside it and a 0600 private key at the model dir root", () => {
    for (const f of ["manifest.json", "manifest.sig", "public-key.pem"])
      expect(fs.existsSync(path.join(a.root, f))).toBe(true);
    const key = path.join(a.modelDir, "signing-key.pem");
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(a.root, "signing-key.pem"))).toBe(false);
  });

  it("names tiers <model>.t0…t3 and exposes cost weights relative to the hot tier", async () => {
    const rt = await openTiny(a);
    try {
      expect(rt.tiers.map((t) => t.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2", "tiny.t3"]);
      expect(rt.tiers.map((t) => t.placement)).toEqual(["HOT", "WARM", "COLD", "COLD"]);
      expect(rt.tiers.map((t) => t.restricted)).toEqual([false, false, false, true]);
      const d = PRESETS.tiny.architecture.dModel;
      const active = (i: number) => {
        const t = PRESETS.tiny.tiers[i];
        return t.groupTopK * t.expertTopK * expertParams(d, t.expertWidth);
      };
      rt.tiers.forEach((t, i) => expect(t.costWeight).toBeCloseTo(active(i) / active(0), 12));
      expect(rt.tiers[0].costWeight).toBe(1);
      const t0 = PRESETS.tiny.tiers[0];
      expect(rt.tiers[0].paramBytes).toBe(
        BigInt(2 * t0.groups * t0.expertsPerGroup * expertParams(d, t0.expertWidth) * 4),
      );
    } finally {
      await rt.close();
    }
  });

  it("shapes the default preset as the issue asks (≥4 layers, d_model ≥256, restricted cold tier 300 MB–1 GB)", () => {
    const p = PRESETS.default;
    expect(p.architecture.layers).toBeGreaterThanOrEqual(4);
    expect(p.architecture.dModel).toBeGreaterThanOrEqual(256);
    expect(p.tiers.map((t) => t.placement)).toEqual(["HOT", "WARM", "COLD", "COLD"]);
    const t3 = p.tiers[3];
    expect(t3.restricted).toBe(true);
    const bytes =
      p.architecture.layers * t3.groups * t3.expertsPerGroup * expertParams(p.architecture.dModel, t3.expertWidth) * 4;
    expect(bytes).toBeGreaterThan(300e6);
    expect(bytes).toBeLessThan(1e9);
  });
});
