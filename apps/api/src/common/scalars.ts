import { Kind, GraphQLError, GraphQLScalarType, type ValueNode } from "graphql";
import { Prisma } from "@lite/db";
import { ECHO_MAX_CHARS, echo } from "./input-limits";

/**
 * The contract's scalars. BigInt and Decimal travel as decimal strings (no precision lost
 * to JSON numbers); DateTime as ISO-8601 UTC. A malformed literal fails validation; a
 * malformed variable is BAD_USER_INPUT naming the variable's path (graphql-js wraps the
 * TypeError thrown here).
 */

/** The instants PostgreSQL's timestamp and JavaScript both hold: years 0001–9999 (UTC). */
const MIN_INSTANT_MS = new Date("0001-01-01T00:00:00Z").getTime();
const MAX_INSTANT_MS = new Date("9999-12-31T23:59:59.999Z").getTime();
/** Longest DateTime, BigInt and Decimal strings: an ISO instant with nanoseconds is 35. */
const SCALAR_MAX_CHARS = 64;

const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/;

/** A short, escaped prefix of a refused value (never the whole of a large one). */
function preview(value: unknown): string {
  return typeof value === "string" ? echo(value) : String(JSON.stringify(value)).slice(0, ECHO_MAX_CHARS);
}

export function parseDateTime(value: unknown): Date {
  if (typeof value !== "string") throw new TypeError("DateTime must be an ISO-8601 string");
  if (value.length > SCALAR_MAX_CHARS) throw new TypeError(`DateTime has at most ${SCALAR_MAX_CHARS} characters`);
  const m = ISO_DATETIME.exec(value);
  if (!m)
    throw new TypeError(
      `DateTime must be ISO-8601 with a time zone, e.g. 2026-01-31T12:00:00Z (got ${preview(value)})`,
    );
  const [, y, mo, d, h, mi] = m.map(Number);
  const s = m[6] === undefined ? 0 : Number(m[6]);
  const calendar = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (calendar.getUTCMonth() !== mo - 1 || calendar.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new TypeError(`DateTime ${value} is not a real instant`);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new TypeError(`DateTime ${value} is not a real instant`);
  if (date.getTime() < MIN_INSTANT_MS || date.getTime() > MAX_INSTANT_MS) {
    throw new TypeError(`DateTime ${value} is outside years 0001–9999 (UTC)`);
  }
  return date;
}

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: "DateTime",
  description: "ISO-8601 instant, serialised in UTC",
  serialize(value) {
    const date =
      value instanceof Date ? value : typeof value === "string" || typeof value === "number" ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) throw new GraphQLError("DateTime cannot represent this value");
    return date.toISOString();
  },
  parseValue: parseDateTime,
  parseLiteral(ast: ValueNode) {
    if (ast.kind !== Kind.STRING) throw new TypeError("DateTime must be a string");
    return parseDateTime(ast.value);
  },
});

const INTEGER = /^-?(0|[1-9]\d*)$/;

export function parseBigInt(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return BigInt(value);
    throw new TypeError("BigInt must be a decimal string (numbers beyond 2^53 lose precision)");
  }
  if (typeof value !== "string" || value.length > SCALAR_MAX_CHARS || !INTEGER.test(value)) {
    throw new TypeError(`BigInt must be an integer as a decimal string (got ${preview(value)})`);
  }
  return BigInt(value);
}

export const BigIntScalar = new GraphQLScalarType<bigint, string>({
  name: "BigInt",
  description: "integer as a decimal string (bytes, counters)",
  serialize(value) {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
    if (typeof value === "string" && INTEGER.test(value)) return value;
    throw new GraphQLError("BigInt cannot represent this value");
  },
  parseValue: parseBigInt,
  parseLiteral(ast: ValueNode) {
    if (ast.kind === Kind.INT || ast.kind === Kind.STRING) return parseBigInt(ast.value);
    throw new TypeError("BigInt must be an integer or a decimal string");
  },
});

const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;

export function parseDecimal(value: unknown): string {
  if (typeof value !== "string" || value.length > SCALAR_MAX_CHARS || !DECIMAL.test(value)) {
    throw new TypeError(`Decimal must be a decimal number as a string, e.g. "0.0015" (got ${preview(value)})`);
  }
  return value;
}

export const DecimalScalar = new GraphQLScalarType<string, string>({
  name: "Decimal",
  description: "exact decimal as a string (money)",
  serialize(value) {
    if (Prisma.Decimal.isDecimal(value)) return (value as Prisma.Decimal).toFixed();
    if (typeof value === "string" && DECIMAL.test(value)) return value;
    if (typeof value === "bigint") return value.toString();
    throw new GraphQLError("Decimal cannot represent this value");
  },
  parseValue: parseDecimal,
  parseLiteral(ast: ValueNode) {
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT || ast.kind === Kind.FLOAT) return parseDecimal(ast.value);
    throw new TypeError("Decimal must be a decimal string");
  },
});
