/**
 * The attacker of bench/abuse.bench.ts, in a process of its own (the bench forks this file
 * with ABUSE_ATTACK set to its spec) so that its client-side work does not distort the
 * victim's timings: one attack of issue 8, run until the parent says "stop", every outcome
 * tallied by status or code.
 */
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { TOKENS_SUBSCRIPTION, wsUrlOf } from "@lite/testing";
import { sleep } from "./live-stack";

const ME = "query { me { role } }";

export const ATTACKS = ["a-once", "a", "b", "c", "d", "e", "f"] as const;
export type AttackName = (typeof ATTACKS)[number];
export const ATTACK_LABEL: Record<AttackName, string> = {
  "a-once": "(a) once: 24 WS connections × 1,000 subscriptions, then held open",
  a: "(a) repeated: 24 WS connections × 1,000 subscriptions, again as each round ends",
  b: "(b) 2,500 `completion(id: $x)` aliases, 150 KB `$x`, ×4",
  c: "(c) 1,000 `priceBook` aliases ×6",
  d: "(d) 95 MB `connection_init` frames ×6",
  e: "(e) NUL byte in `tenant(id:)` ×16",
  f: "(f) random keys ×16 (failed-auth throttling)",
};

export interface AttackSpec {
  attack: AttackName;
  url: string;
  key: string;
  completionId: string;
}

export type Tally = Record<string, number>;
const count = (t: Tally, k: string) => (t[k] = (t[k] ?? 0) + 1);

/** Runs `n` loops of `once` until `stopped()`; every outcome (status/code) tallied. */
async function loops(n: number, stopped: () => boolean, once: () => Promise<string>, tally: Tally) {
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (!stopped()) count(tally, await once().catch((e: Error) => `throw ${e.message.slice(0, 40)}`));
    }),
  );
}

async function post(url: string, key: string | null, body: string): Promise<string> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body,
  });
  const text = await res.text();
  const code = /"code":"([A-Z_]+)"/.exec(text)?.[1] ?? "-";
  return `${res.status} ${code}`;
}

/**
 * (a): one graphql-transport-ws socket sending rounds of `perRound` subscribes, `rounds`
 * times (or until stopped), then holding the socket open until stopped.
 */
function subscriptionFlood(
  spec: AttackSpec,
  perRound: number,
  rounds: number,
  stopped: () => boolean,
  tally: Tally,
): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrlOf(spec.url), "graphql-transport-ws");
    let pending = 0;
    let round = 0;
    const sendRound = (): void => {
      if (stopped()) return ws.close(1000);
      if (round >= rounds) {
        setTimeout(sendRound, 100);
        return;
      }
      round++;
      pending = perRound;
      for (let i = 0; i < perRound; i++)
        ws.send(
          JSON.stringify({
            id: `${round}-${i}`,
            type: "subscribe",
            payload: { query: TOKENS_SUBSCRIPTION, variables: { id: spec.completionId, from: 0 } },
          }),
        );
    };
    ws.on("open", () =>
      ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${spec.key}` } })),
    );
    ws.on("message", (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; payload?: Array<{ extensions?: { code?: string } }> };
      if (m.type === "connection_ack") {
        count(tally, "ws connected");
        return sendRound();
      }
      if (m.type === "error") count(tally, `subscribe ${m.payload?.[0]?.extensions?.code ?? "error"}`);
      else if (m.type === "complete") count(tally, "subscribe complete");
      else return;
      if (--pending === 0) sendRound();
    });
    ws.on("error", () => undefined);
    ws.on("close", (code) => {
      count(tally, `ws closed ${code}`);
      resolve();
    });
  });
}

/** (d): one socket sending a `bytes`-long connection_init text frame; resolves on close. */
function hugeInit(spec: AttackSpec, frame: Buffer): Promise<string> {
  return new Promise((resolve) => {
    // a zero mask: ws then sends the shared buffer as is instead of a masked 95 MB copy per socket
    const ws = new WebSocket(wsUrlOf(spec.url), "graphql-transport-ws", { generateMask: (m) => m.fill(0) });
    ws.on("open", () => ws.send(frame, { binary: false }));
    ws.on("error", () => undefined);
    ws.on("close", (code) => resolve(`ws closed ${code}`));
  });
}

async function runAttack(spec: AttackSpec, stopped: () => boolean): Promise<Tally> {
  const tally: Tally = {};
  const { url, key } = spec;
  switch (spec.attack) {
    case "a-once":
    case "a":
      await loops(
        24,
        stopped,
        async () => {
          await subscriptionFlood(spec, 1000, spec.attack === "a" ? Infinity : 1, stopped, tally);
          await sleep(100);
          return "connection ended";
        },
        tally,
      );
      break;
    case "b": {
      const q = `query($x: ID!) { ${Array.from({ length: 2500 }, (_, i) => `a${i}: completion(id: $x) { id }`).join(" ")} }`;
      const body = JSON.stringify({ query: q, variables: { x: "cmp_" + "x".repeat(150 * 1024) } });
      await loops(4, stopped, () => post(url, key, body), tally);
      break;
    }
    case "c": {
      const body = JSON.stringify({
        query: `{ ${Array.from({ length: 1000 }, (_, i) => `p${i}: priceBook { id }`).join(" ")} }`,
      });
      await loops(6, stopped, () => post(url, key, body), tally);
      break;
    }
    case "d": {
      const frame = Buffer.alloc(95 * 1024 * 1024, " ");
      frame.write(`{"type":"connection_init","payload":{"authorization":"Bearer ${key}","pad":"`);
      frame.write(`"}}`, frame.length - 3);
      await loops(6, stopped, () => hugeInit(spec, frame), tally);
      break;
    }
    case "e": {
      const body = JSON.stringify({
        query: "query($id: ID!) { tenant(id: $id) { id } }",
        variables: { id: "x\u0000y" },
      });
      await loops(16, stopped, () => post(url, key, body), tally);
      break;
    }
    case "f": {
      const body = JSON.stringify({ query: ME });
      const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
      const randomKey = () => "lite_" + [...randomBytes(43)].map((b) => b62[b % 62]).join("");
      await loops(16, stopped, () => post(url, randomKey(), body), tally);
      break;
    }
  }
  return tally;
}

/** Child entry: attack until the parent says "stop", then send the tally and exit. */
function attackerMain(spec: AttackSpec) {
  let stopped = false;
  process.on("message", (m) => {
    if (m === "stop") stopped = true;
  });
  runAttack(spec, () => stopped).then(
    (tally) => process.send!({ tally }, () => process.exit(0)),
    (e: Error) => process.send!({ tally: { [`attacker failed: ${e.message}`]: 1 } }, () => process.exit(1)),
  );
}

if (require.main === module && process.env.ABUSE_ATTACK)
  attackerMain(JSON.parse(process.env.ABUSE_ATTACK) as AttackSpec);
