/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { resolveModeTiers } from "./mode-tiers";
import { deriveRoutingSeed } from "./routing-seed";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * Same prompt, seed and TierSet → identical tokens and experts in another process: the
 * generate CLI (a separate node process, its own onnxruntime sessions) against this
 * process's decode loop. This is what lets a second worker replay a dead worker's
 * completion and resume its stream.
 */

const run = promisify(execFile);
const repo = path.resolve(__dirname, "../../..");

interface CliResult {
  tokens: number[];
  experts: string[][];
  text: string;
  batchConsistent: boolean;
  routingSeed: string;
}

async function cli(m: TinyModel, args: string[]): Promise<CliResult> {
  const { stdout } = await run(
    process.execPath,
    [
      "-r",
      "./scripts/register.js",
      "scripts/generate.ts",
      "--model",
      m.modelName,
      "--model-dir",
      m.modelDir,
      "--json",
      ...args,
    ],
    { cwd: repo, env: { ...process.env, ORT_INTRA_OP_THREADS: "2" }, timeout: 25000 },
  );
  return JSON.parse(stdout) as CliResult;
}

describe("determinism across processes", () => {
  let m: TinyModel;
  beforeAll(() => (m = buildTinyModel()));
  afterAll(() => m.cleanup());

  it("a second process (2 intra-op threads, batch of 3) produces this process's tokens and experts", async () => {
    const rt = await openTiny(m); // 1 intra-op thread here
    try {
      const prompt = "Determinism, please.";
      const seq = spec(rt, {
        id: "here",
        prompt,
        tenantId: "ten_x",
        routingSeed: deriveRoutingSeed("ten_x", "1234"),
        tierIds: resolveModeTiers(rt.tiers, "DEEP"),
        temperature: 0.8,
        maxTokens: 24,
      });
      const here = (await runToEnd(rt, [seq])).get("here")!;
      const tokens = here.map((o) => o.tokenId).filter((t) => t !== rt.tokenizer.eos);
      const experts = Array.from({ length: rt.manifest.architecture.layers }, (_, l) =>
        [...new Set(here.flatMap((o) => o.experts[l]))].sort(),
      );

      const args = [
        "--prompt",
        prompt,
        "--mode",
        "DEEP",
        "--seed",
        "1234",
        "--tenant",
        "ten_x",
        "--max-tokens",
        "24",
        "--temperature",
        "0.8",
      ];
      const [first, second] = await Promise.all([cli(m, args), cli(m, [...args, "--batch", "3"])]);
      for (const there of [first, second]) {
        expect(there.routingSeed).toBe(deriveRoutingSeed("ten_x", "1234").toString());
        expect(there.tokens).toEqual(tokens);
        expect(there.experts).toEqual(experts);
        expect(there.batchConsistent).toBe(true);
      }
      expect(first.text).toBe(rt.tokenizer.decode(tokens));
    } finally {
      await rt.close();
    }
  }, 30000);
});
