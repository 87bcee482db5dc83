import { StopScanner } from "../../apps/api/src/openai/stop-sequences";

/** Pieces pushed one by one: what the client is sent, joined, and whether a stop ended it. */
function run(stops: string[], pieces: string[]): { sent: string[]; stopped: boolean; output: string } {
  const s = new StopScanner(stops);
  const sent: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const step = s.push(p);
    if (step.send) sent.push(step.send);
    stopped ||= step.stopped;
    if (stopped) break;
  }
  const rest = s.flush();
  if (rest) sent.push(rest);
  return { sent, stopped, output: s.output };
}

describe("StopScanner (stop sequences of the OpenAI-compatible API)", () => {
  it("without stop sequences every piece is sent as it comes", () => {
    expect(run([], ["a", "b", "c"])).toEqual({ sent: ["a", "b", "c"], stopped: false, output: "abc" });
  });

  it("a stop sequence split across pieces is never sent, nor anything after it", () => {
    const r = run(["END"], ["ab", "cE", "N", "Dxyz"]);
    expect(r.stopped).toBe(true);
    expect(r.sent.join("")).toBe("abc");
    expect(r.output).toBe("abc");
    // "E" and "EN" were held back while they could still start "END".
    expect(r.sent).toEqual(["ab", "c"]);
  });

  it("a held-back prefix that does not become the sequence is sent once it cannot", () => {
    const r = run(["END"], ["aE", "Nb", "c"]);
    expect(r.stopped).toBe(false);
    expect(r.sent).toEqual(["a", "ENb", "c"]);
    expect(r.output).toBe("aENbc");
  });

  it("the earliest of several sequences wins, and a prefix held at the end is flushed", () => {
    expect(run(["yz", "b"], ["ab", "yz"]).output).toBe("a");
    const r = run(["xyz"], ["ab", "xy"]);
    expect(r).toEqual({ sent: ["ab", "xy"], stopped: false, output: "abxy" });
  });

  it("a sequence inside one piece trims it there", () => {
    const r = run(["\n\n"], ["one\n\ntwo"]);
    expect(r).toEqual({ sent: ["one"], stopped: true, output: "one" });
  });
});
