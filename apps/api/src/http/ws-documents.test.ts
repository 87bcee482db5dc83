import { buildSchema } from "graphql";
import { DOCUMENT_MAX_CHARS, DOCUMENTS_MAX, preparedDocument } from "./ws-documents";

const sdl = `
  type Query { ping: String }
  type Event { index: Int!, text: String! }
  type Subscription { events(id: ID!): Event! }
`;
const TOKENS = "subscription($id: ID!) { events(id: $id) { index text } }";

describe("preparedDocument (graphql-ws subscribe documents)", () => {
  it("parses and validates a text once: the same text again gets the same document", () => {
    const schema = buildSchema(sdl);
    const a = preparedDocument(schema, TOKENS);
    const b = preparedDocument(schema, TOKENS);
    expect(a.ok).toBe(true);
    expect(b).toBe(a);
    // another schema (another API server in the process) prepares on its own
    expect(preparedDocument(buildSchema(sdl), TOKENS)).not.toBe(a);
  });

  it("a syntax error, a validation error and a document over the token limit are refused (and the refusal kept)", () => {
    const schema = buildSchema(sdl);
    const syntax = preparedDocument(schema, "subscription { events(id: ");
    expect(syntax).toMatchObject({ ok: false, code: "GRAPHQL_PARSE_FAILED" });
    expect(preparedDocument(schema, "subscription { events(id: ")).toBe(syntax);
    const invalid = preparedDocument(schema, "subscription { nope }");
    expect(invalid).toMatchObject({ ok: false, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(!invalid.ok && invalid.errors[0].message).toMatch(/nope/);
    const long = `query { ${Array.from({ length: 2500 }, () => "ping").join(" ")} }`;
    expect(preparedDocument(schema, long)).toMatchObject({ ok: false, code: "GRAPHQL_PARSE_FAILED" });
    const aliased = `query { ${Array.from({ length: 40 }, (_, i) => `p${i}: ping`).join(" ")} }`;
    expect(preparedDocument(schema, aliased)).toMatchObject({ ok: false, code: "GRAPHQL_VALIDATION_FAILED" });
  });

  it("keeps at most DOCUMENTS_MAX texts, least recently used dropped first, and none over DOCUMENT_MAX_CHARS", () => {
    const schema = buildSchema(sdl);
    const textOf = (i: number) => `subscription S${i} { events(id: "${i}") { index } }`;
    const first = preparedDocument(schema, textOf(0));
    const second = preparedDocument(schema, textOf(1));
    for (let i = 2; i < DOCUMENTS_MAX; i++) preparedDocument(schema, textOf(i));
    expect(preparedDocument(schema, textOf(0))).toBe(first); // used again: now the most recent
    preparedDocument(schema, textOf(DOCUMENTS_MAX)); // one over: the least recently used (1) goes
    expect(preparedDocument(schema, textOf(0))).toBe(first);
    expect(preparedDocument(schema, textOf(1))).not.toBe(second);
    const padded = `${TOKENS}${" ".repeat(DOCUMENT_MAX_CHARS)}`;
    expect(preparedDocument(schema, padded).ok).toBe(true);
    expect(preparedDocument(schema, padded)).not.toBe(preparedDocument(schema, padded));
  });
});
