/**
 * Issue 8's fuzz suite: fast-check over the served schema. Every root query and mutation,
 * every role and no key (or a wrong one), with hostile values for each argument (NUL, lone
 * surrogates, huge and negative numbers, malformed scalars, long strings, wrong types,
 * aliases), plus bad bodies and headers. Bounded in time; the properties: no response is
 * 500, none shows internal text, and /readyz answers 200 throughout.
 */
import fc from "fast-check";
import {
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLField,
  type GraphQLInputType,
} from "graphql";
import { newId } from "@lite/core";
import { createKey, createTenant, seedModel, TEST_ADMIN_KEY } from "@lite/testing";
import { buildApiSchema } from "../../apps/api/src/schema";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

const TIME_LIMIT_MS = 20_000;
const INTERNAL_TEXT =
  /Maximum call stack|RangeError|ReferenceError|TypeError:|Prisma|prisma\.|invocation|\bat [\w.<>]+ \(|node_modules|\/work\//;

let stack: TestStack;
let api: RunningApiServer;
let keys: (string | null)[];
let fields: { kind: "query" | "mutation"; field: GraphQLField<unknown, unknown> }[];
const bad: string[] = [];
let readyFailures = 0;

beforeAll(async () => {
  // The fuzzer is a client whose requests are refused thousands of times: the client-error
  // budget (test/api/abuse-client-errors.test.ts) would stop it from reaching the resolvers.
  stack = await startStack({
    prepare: (e) => seedModel(e.db),
    apiEnv: { CLIENT_ERROR_BURST: "1000000", REFUSAL_TARPIT_MS: "0" },
  });
  api = stack.api;
  const t = await createTenant(stack.env.db);
  const finance = await createKey(stack.env.db, "FINANCE");
  keys = [TEST_ADMIN_KEY, finance.secret, t.secret, null, "lite_wrong_key_0123456789abcdef"];
  const schema = await buildApiSchema();
  fields = [
    ...Object.values(schema.getQueryType()!.getFields()).map((field) => ({ kind: "query" as const, field })),
    ...Object.values(schema.getMutationType()!.getFields()).map((field) => ({ kind: "mutation" as const, field })),
  ];
});

afterAll(async () => {
  await stack?.close();
});

const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom("x\u0000y", "\ud800", "a\udc00b", "", " ", "ten_\u0000", "\u0000") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(newId("tenant"), newId("completion"), newId("apiKey"), "tiny.t0", "pb_default"),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 200_000 }).map((n) => "z".repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom("9".repeat(1000), "c1:", "YzE6AA", "YzE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5") },
);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 1, 1e308, -1e308, 0.5, -0),
  fc.double({ noNaN: true }),
);
const scalarValue: Record<string, fc.Arbitrary<unknown>> = {
  DateTime: fc.oneof(
    fc.constantFrom("2026-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "yesterday"),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    hostileString,
  ),
  BigInt: fc.oneof(fc.constantFrom("1", "-5", "9".repeat(80), "1e5", "0x10"), hostileNumber, hostileString),
  Decimal: fc.oneof(fc.constantFrom("0.1", "-1", "1e-7", "9".repeat(80), ".5"), hostileNumber),
  Int: hostileNumber,
  Float: hostileNumber,
  Boolean: fc.oneof(fc.boolean(), fc.constantFrom("true", 1)),
};

/** A value for an input type: usually of its shape, sometimes of the wrong one. */
function valueOf(type: GraphQLInputType, depth = 0): fc.Arbitrary<unknown> {
  const wrong = fc.oneof(fc.constant(null), hostileString, hostileNumber, fc.constant({ x: 1 }), fc.constant([]));
  const inner = getNullableType(type) as GraphQLInputType;
  let right: fc.Arbitrary<unknown>;
  if (isListType(inner)) right = fc.array(valueOf(inner.ofType, depth + 1), { maxLength: depth > 1 ? 1 : 4 });
  else if (isInputObjectType(inner)) {
    const shape: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [name, f] of Object.entries(inner.getFields())) shape[name] = valueOf(f.type, depth + 1);
    right = fc.record(shape, { requiredKeys: [] });
  } else if (isEnumType(inner))
    right = fc.oneof(fc.constantFrom(...inner.getValues().map((v) => v.name)), hostileString);
  else if (isScalarType(inner)) right = scalarValue[inner.name] ?? hostileString;
  else right = hostileString;
  return fc.oneof({ weight: 5, arbitrary: right }, { weight: 1, arbitrary: wrong });
}

/** `{ __typename }` for objects, nothing for scalars (what every object type can answer). */
function selectionOf(field: GraphQLField<unknown, unknown>): string {
  const named = getNamedType(field.type);
  return isObjectType(named) ? "{ __typename }" : "";
}

const operation = fc.integer({ min: 0, max: 1_000_000 }).chain((i) => {
  const { kind, field } = fields[i % fields.length];
  const args: Record<string, fc.Arbitrary<unknown>> = {};
  for (const a of field.args) args[a.name] = valueOf(a.type);
  return fc.record({
    kind: fc.constant(kind),
    field: fc.constant(field),
    variables: fc.record(args, { requiredKeys: field.args.filter((a) => isNonNullType(a.type)).map((a) => a.name) }),
    aliases: fc.oneof(
      { weight: 6, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.integer({ min: 2, max: 60 }) },
    ),
    key: fc.constantFrom(...keys),
  });
});

async function send(body: string | Buffer, headers: Record<string, string>): Promise<void> {
  const res = await fetch(api.url, { method: "POST", headers, body });
  const text = await res.text();
  if (res.status >= 500 && res.status !== 501 && res.status !== 503) bad.push(`${res.status}: ${text.slice(0, 300)}`);
  else if (INTERNAL_TEXT.test(text)) bad.push(`internal text (${res.status}): ${text.slice(0, 300)}`);
}

/** /readyz every 250 ms while `work` runs. */
async function whileReady<T>(work: () => Promise<T>): Promise<T> {
  let stop = false;
  const poll = (async () => {
    while (!stop) {
      const r = await fetch(`${api.baseUrl}/readyz`).catch(() => null);
      if (r?.status !== 200) readyFailures++;
      await new Promise((res) => setTimeout(res, 250));
    }
  })();
  try {
    return await work();
  } finally {
    stop = true;
    await poll;
  }
}

describe("fuzzing the served schema", () => {
  beforeEach(() => {
    bad.length = 0;
    readyFailures = 0;
  });

  it("every root query and mutation, every role and no key, hostile arguments: no 500, no internal text", async () => {
    await whileReady(() =>
      fc.assert(
        fc.asyncProperty(operation, async (op) => {
          const decl = op.field.args.map((a) => `$${a.name}: ${String(a.type)}`).join(", ");
          const call = op.field.args.length ? `(${op.field.args.map((a) => `${a.name}: $${a.name}`).join(", ")})` : "";
          const body = Array.from(
            { length: op.aliases },
            (_, i) => `a${i}: ${op.field.name}${call} ${selectionOf(op.field)}`,
          );
          const query = `${op.kind}${decl ? `(${decl})` : ""} { ${body.join(" ")} }`;
          const headers: Record<string, string> = { "content-type": "application/json" };
          if (op.key) headers.authorization = `Bearer ${op.key}`;
          await send(JSON.stringify({ query, variables: op.variables }), headers);
        }),
        {
          numRuns: 1500,
          interruptAfterTimeLimit: TIME_LIMIT_MS,
          seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31),
        },
      ),
    );
    expect(bad).toEqual([]);
    expect(readyFailures).toBe(0);
  }, 60_000);

  it("bad bodies and headers: no 500, no internal text", async () => {
    const body = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom(
        "",
        "{",
        "[]",
        "null",
        '{"query": 1}',
        '{"query": "{ me { role } }", "variables": []}',
        '{"query":"{ me { role }"}',
      ),
      fc.constantFrom(
        `{"query":"${"{".repeat(3000)}"}`,
        `{"query":"{ me { role } }","operationName":{}}`,
        "[".repeat(5000),
      ),
      fc.json(),
    );
    const headers = fc.record({
      "content-type": fc.constantFrom(
        "application/json",
        "application/json; charset=utf-16",
        "application/json; charset=latin1",
        "text/plain",
        "application/graphql",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
      ),
      "content-encoding": fc.constantFrom("identity", "gzip", "deflate", "br", "snappy", "x\u00e9"),
      authorization: fc.constantFrom(
        `Bearer ${TEST_ADMIN_KEY}`,
        "Bearer",
        "Basic Zm9vOmJhcg==",
        "Bearer \u00e9\u00e9",
        "",
      ),
    });
    await whileReady(() =>
      fc.assert(
        fc.asyncProperty(body, headers, async (b, h) => {
          const clean = Object.fromEntries(Object.entries(h).filter(([, v]) => v !== "" && /^[\x20-\x7e]*$/.test(v)));
          await send(b, clean);
        }),
        { numRuns: 300, interruptAfterTimeLimit: 10_000 },
      ),
    );
    expect(bad).toEqual([]);
    expect(readyFailures).toBe(0);
  }, 60_000);
});
