import * as fs from "node:fs";
import { WORKER_NODE_FLAGS } from "@lite/config";
import { collectTokens, COMPLETION_QUERY, CREATE_COMPLETION, waitFor, wsClient } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

describe("completions end to end (smoke)", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 1, workerEnv: { WORKER_NICE: "10" } });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  it("creates a completion, streams its tokens, finalises the row and the usage", async () => {
    const t = await stack.tenant();
    const r = await t.http.request<{ createCompletion: { id: string; status: string; seed: string } }>(
      CREATE_COMPLETION,
      {
        input: { prompt: "Hello", maxTokens: 12, mode: "FAST", seed: "42", temperature: 0.8 },
      },
    );
    expect(r.errors).toBeUndefined();
    const id = r.data!.createCompletion.id;
    expect(id).toMatch(/^cmp_/);
    expect(r.data!.createCompletion.seed).toBe("42");
    const ws = wsClient(stack.api.url, t.secret);
    const events = await collectTokens(ws, id);
    await ws.dispose();
    const last = events[events.length - 1];
    expect(last.done).toBe(true);
    expect(last.tokenId).toBe(-1);
    expect(last.index).toBe(events.length - 1);
    expect(events.slice(0, -1).map((e) => e.index)).toEqual([...Array(events.length - 1).keys()]);
    const done = await waitFor("final row", async () => {
      const q = await t.http.ok<{
        completion: { status: string; text: string; outputTokens: number; finishReason: string };
      }>(COMPLETION_QUERY, { id });
      return q.completion.status === "COMPLETED" ? q.completion : undefined;
    });
    expect(done.text).toBe(events.map((e) => e.text).join(""));
    expect(done.outputTokens).toBe(events.length - 1);
    const usage = await waitFor("usage", async () => {
      const rows = await stack.env.db.usageEvent.findMany({ where: { completionId: id } });
      return rows.length > 0 ? rows : undefined;
    });
    const out = usage.find((u) => u.meter === "OUTPUT_TOKENS");
    expect(Number(out!.quantity)).toBe(events.length - 1);
    expect(usage.find((u) => u.meter === "TIERSET_ACTIVATIONS")!.dimension).toBe("FAST");
    expect(usage.some((u) => u.meter === "EXPERT_CALLS" && u.dimension === "tiny.t0")).toBe(true);
    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0;
    });
  });

  (process.platform === "linux" ? it : it.skip)(
    "the worker runs every thread at WORKER_NICE (10 here; 0, unchanged, by default)",
    () => {
      const pid = stack.workers[0].pid;
      const nice = fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
        const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      });
      expect(nice.length).toBeGreaterThan(1);
      expect(nice.every((n) => n === 10)).toBe(true);
    },
  );

  (process.platform === "linux" ? it : it.skip)(
    "the worker runs with WORKER_NODE_FLAGS and says nothing of missing ones",
    () => {
      const w = stack.workers[0];
      const argv = fs.readFileSync(`/proc/${w.pid}/cmdline`, "utf8").split("\0");
      for (const flag of WORKER_NODE_FLAGS) expect(argv).toContain(flag);
      expect(w.output()).not.toContain("started without the worker's node flags");
    },
  );
});
