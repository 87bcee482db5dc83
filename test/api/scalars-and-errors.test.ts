import { GraphQLError } from "graphql";
import { Prisma } from "@lite/db";
import { createLogger } from "@lite/telemetry";
import { DomainError } from "@lite/core";
import {
  BigIntScalar,
  DateTimeScalar,
  DecimalScalar,
  parseBigInt,
  parseDateTime,
  parseDecimal,
} from "../../apps/api/src/common/scalars";
import {
  fieldOfVariableError,
  formatError,
  mapDomainCode,
  mapResolverError,
  retryAfterSeconds,
  toGraphQLError,
} from "../../apps/api/src/errors";

describe("BigInt scalar", () => {
  it("round-trips 2^53 + 1 exactly as a decimal string", () => {
    const big = 2n ** 53n + 1n;
    expect(parseBigInt("9007199254740993")).toBe(big);
    expect(BigIntScalar.serialize(big)).toBe("9007199254740993");
    expect(BigIntScalar.serialize(2n ** 63n - 1n)).toBe("9223372036854775807");
  });
  it.each(["", "1.5", "abc", "1e3", "0x10", " 1", "--1", "01"])("refuses %j", (v) => {
    expect(() => parseBigInt(v)).toThrow(TypeError);
  });
  it("refuses numbers beyond 2^53 (they already lost precision)", () => {
    expect(() => parseBigInt(2 ** 53 + 2)).toThrow(/decimal string/);
    expect(parseBigInt(42)).toBe(42n);
  });
});

describe("DateTime scalar", () => {
  it("parses ISO-8601 with a zone and serialises UTC", () => {
    expect(parseDateTime("2026-03-01T10:00:00+02:00").toISOString()).toBe("2026-03-01T08:00:00.000Z");
    expect(DateTimeScalar.serialize(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe("2026-01-02T03:04:05.006Z");
  });
  it.each([
    "2026-02-30T00:00:00Z",
    "2026-01-01",
    "2026-01-01T00:00:00",
    "yesterday",
    "2026-13-01T00:00:00Z",
    "2026-01-01T24:00:00Z",
  ])("refuses %j", (v) => {
    expect(() => parseDateTime(v)).toThrow(TypeError);
  });
});

describe("Decimal scalar", () => {
  it("keeps exact decimal strings", () => {
    expect(parseDecimal("0.000000000001")).toBe("0.000000000001");
    expect(DecimalScalar.serialize("12.50")).toBe("12.50");
  });
  it.each(["1e-7", "abc", "", ".5", "1.", "NaN"])("refuses %j", (v) => {
    expect(() => parseDecimal(v)).toThrow(TypeError);
  });
  it("refuses JSON numbers (they are floats)", () => {
    expect(() => parseDecimal(0.1)).toThrow(TypeError);
  });
});

describe("error mapping", () => {
  it("maps each domain code to the contract's extensions.code and HTTP status", () => {
    expect(mapDomainCode("UNAUTHENTICATED")).toMatchObject({ code: "UNAUTHENTICATED", status: 401 });
    expect(mapDomainCode("FORBIDDEN")).toMatchObject({ code: "FORBIDDEN", status: 403 });
    expect(mapDomainCode("BAD_USER_INPUT")).toMatchObject({ code: "BAD_USER_INPUT", status: 400 });
    expect(mapDomainCode("NOT_FOUND")).toMatchObject({ code: "NOT_FOUND", status: undefined });
    expect(mapDomainCode("RATE_LIMITED")).toMatchObject({ code: "RATE_LIMITED", status: 429 });
    expect(mapDomainCode("QUOTA_EXCEEDED")).toMatchObject({ code: "QUOTA_EXCEEDED", status: 429 });
    expect(mapDomainCode("UNAVAILABLE")).toMatchObject({ code: "UNAVAILABLE", status: 503 });
    expect(mapDomainCode("NOT_IMPLEMENTED")).toMatchObject({ code: "NOT_IMPLEMENTED", status: 501 });
    expect(mapDomainCode("STREAM_EXPIRED")).toMatchObject({ code: "STREAM_EXPIRED", status: 410 });
    expect(mapDomainCode("INTERNAL")).toMatchObject({ code: "INTERNAL_SERVER_ERROR", status: 500, masked: true });
  });

  it("gives 429 a Retry-After in whole seconds ≥ 1 and extensions.retryAfterMs", () => {
    const e = toGraphQLError(new DomainError("RATE_LIMITED", "slow down", { retryAfterMs: 1200 }), "req_1");
    const http = e.extensions.http as { status: number; headers: Map<string, string> };
    expect(http.status).toBe(429);
    expect(http.headers.get("retry-after")).toBe("2");
    expect(e.extensions.retryAfterMs).toBe(1200);
    const tiny = toGraphQLError(new DomainError("QUOTA_EXCEEDED", "full", { retryAfterMs: 5 }), "req_2");
    expect((tiny.extensions.http as { headers: Map<string, string> }).headers.get("retry-after")).toBe("1");
    expect(retryAfterSeconds(0)).toBe(1);
    const unavailable = toGraphQLError(new DomainError("UNAVAILABLE", "busy", { retryAfterMs: 3000 }), "req_3");
    expect(
      (unavailable.extensions.http as { status: number; headers: Map<string, string> }).headers.get("retry-after"),
    ).toBe("3");
  });

  it("masks unknown errors: no message detail, no stack, a request id", () => {
    const e = mapResolverError(new Error("password=hunter2 at db.ts:12"), "req_9");
    expect(e.message).toBe("Internal server error");
    expect(e.extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", requestId: "req_9" });
    const formatted = formatError(
      { message: "secret detail", extensions: { code: "SOMETHING", stacktrace: ["x"] } },
      new Error("secret detail"),
    );
    expect(formatted.message).toBe("Internal server error");
    expect(JSON.stringify(formatted)).not.toMatch(/secret|stacktrace/);
  });

  it("names the field of a bad variable", () => {
    expect(
      fieldOfVariableError('Variable "$input" got invalid value "x" at "input.quota.hotMemoryBytes"; BigInt must be…'),
    ).toBe("input.quota.hotMemoryBytes");
    const f = formatError(
      {
        message: 'Variable "$first" got invalid value "a"; Int cannot represent',
        extensions: { code: "BAD_USER_INPUT" },
      },
      new GraphQLError("x"),
    );
    expect(f.extensions?.field).toBe("first");
  });
});

describe("logs", () => {
  it("never carry a Prisma error's echoed arguments, an authorization header or a prompt", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", name: "api", destination: { write: (s: string) => void lines.push(s) } });
    const prismaError = new Prisma.PrismaClientKnownRequestError(
      'Invalid `prisma.completion.create()` invocation:\n{ data: { prompt: "SECRET PROMPT" } }',
      {
        code: "P2002",
        clientVersion: "6",
      },
    );
    log.error({ err: prismaError }, "failed");
    log.info({ headers: { authorization: "Bearer lite_secret" }, prompt: "SECRET PROMPT" }, "request");
    const text = lines.join("");
    expect(text).toContain("P2002");
    expect(text).not.toMatch(/SECRET PROMPT|lite_secret/);
  });
});
