import { decodeCursor } from "@lite/db";
import { ID_PREFIXES, type IdKind } from "@lite/core";
import { IDEMPOTENCY_KEY_MAX_CHARS } from "@lite/completions";

/**
 * The limits every ID and String argument meets before any resolver runs (README "Input
 * limits"). PostgreSQL text cannot hold NUL and a lone UTF-16 surrogate cannot be encoded,
 * so both are refused everywhere; every value has a maximum so that no request can make
 * the server echo, store or audit a large value; ids have a shape so that what reaches a
 * lookup (and a NOT_FOUND message or an audit row) is short and printable.
 *
 * Coordinates: `Type.field(arg:)` for a field argument, `InputType.field` for an input
 * field (schema coordinates, as graphql-js spells them).
 */

/** Longest ID of any kind (a prefixed id is 4–5 + 26 characters; manifest tier ids are free). */
export const ID_MAX_CHARS = 128;
/** Any String argument the table below does not name. */
export const STRING_MAX_CHARS = 1024;
/** How much of a refused value an error message quotes (JSON-escaped, then "…"). */
export const ECHO_MAX_CHARS = 32;

/** Strings with their own maximum, in UTF-16 code units (`prompt` is in bytes: MAX_PROMPT_BYTES). */
export const STRING_MAX_BY_COORDINATE: Readonly<Record<string, number>> = {
  "CompletionInput.seed": 128,
  /** libs/completions then also requires 1..128 printable ASCII (it checks the HTTP header too) */
  "CompletionInput.idempotencyKey": IDEMPOTENCY_KEY_MAX_CHARS,
  "CreateTenantInput.name": 256,
  "UpdateTenantInput.name": 256,
  "PrivateTierInput.name": 256,
  "PriceBookInput.currency": 16,
  "PriceInput.unit": 64,
  "PriceInput.dimension": 64,
  "Query.invoice(period:)": 16,
  "Query.invoices(period:)": 16,
};

/** The one String measured in UTF-8 bytes against MAX_PROMPT_BYTES. */
export const PROMPT_COORDINATE = "CompletionInput.prompt";

/** Longest cursor (`after`): base64url of `c1:` and an id or a sequence number. */
export const CURSOR_MAX_CHARS = 256;

/** IDs that name one kind of object: they must carry its prefix (`ten_…`, `cmp_…`, `key_…`). */
export const ID_KIND_BY_COORDINATE: Readonly<Record<string, IdKind>> = {
  "Query.tenant(id:)": "tenant",
  "Mutation.updateTenant(id:)": "tenant",
  "Mutation.suspendTenant(id:)": "tenant",
  "Query.completion(id:)": "completion",
  "Mutation.cancelCompletion(id:)": "completion",
  "Subscription.completionTokens(id:)": "completion",
  "Mutation.revokeApiKey(id:)": "apiKey",
};

/** Any ID argument or input field of these names, wherever it appears. */
export const ID_KIND_BY_NAME: Readonly<Record<string, IdKind>> = {
  tenantId: "tenant",
  apiKeyId: "apiKey",
  completionId: "completion",
};

/** An id of no particular kind (tiers `default.t0`, models `default`, price books `pb_default`). */
const ID_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/** After the prefix and `_`: what newId writes (Crockford base32), leniently cased. */
const PREFIXED_TAIL = /^[A-Za-z0-9]{1,64}$/;
// eslint-disable-next-line no-control-regex -- NUL is exactly what this refuses
const NUL_OR_LONE_SURROGATE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const INT8_MAX = 9223372036854775807n;
const DIGITS = /^\d{1,20}$/;

/** At most ECHO_MAX_CHARS of the value, JSON-escaped (NUL → \u0000, lone surrogates → \udXXX). */
export function echo(value: string): string {
  const head = JSON.stringify(value.slice(0, ECHO_MAX_CHARS));
  return value.length > ECHO_MAX_CHARS ? `${head}…` : head;
}

/** What is wrong with a string in any position, or null. */
export function unencodable(value: string): string | null {
  return NUL_OR_LONE_SURROGATE.test(value) ? "must not contain NUL bytes or lone UTF-16 surrogates" : null;
}

/** What is wrong with this ID, or null. */
export function checkId(value: string, kind: IdKind | undefined): string | null {
  const bad = unencodable(value);
  if (bad) return bad;
  if (value.length > ID_MAX_CHARS) return `an id has at most ${ID_MAX_CHARS} characters`;
  if (kind) {
    const prefix = `${ID_PREFIXES[kind]}_`;
    if (!value.startsWith(prefix) || !PREFIXED_TAIL.test(value.slice(prefix.length))) {
      return `must be a ${kind} id (${prefix}…)`;
    }
    return null;
  }
  return ID_SHAPE.test(value) ? null : "an id is letters, digits and . _ : - only";
}

/** What is wrong with this String, or null; `maxBytes` measures UTF-8 bytes instead of characters. */
export function checkString(value: string, limit: { maxChars?: number; maxBytes?: number }): string | null {
  const bad = unencodable(value);
  if (bad) return bad;
  if (limit.maxBytes !== undefined && Buffer.byteLength(value, "utf8") > limit.maxBytes) {
    return `must be at most ${limit.maxBytes} bytes`;
  }
  const maxChars = limit.maxChars ?? STRING_MAX_CHARS;
  if (value.length > maxChars) return `must be at most ${maxChars} characters`;
  return null;
}

/**
 * What is wrong with a cursor, or null. Lists decode their own cursors; this refuses at the
 * edge what would reach PostgreSQL as NUL or overflow int8 (the audit log's sequence).
 */
export function checkCursor(value: string): string | null {
  const bad = checkString(value, { maxChars: CURSOR_MAX_CHARS });
  if (bad) return bad;
  let payload: string;
  try {
    payload = decodeCursor(value);
  } catch {
    return "malformed cursor";
  }
  if (!ID_SHAPE.test(payload) || payload.length > ID_MAX_CHARS) return "malformed cursor";
  if (/^\d+$/.test(payload) && (!DIGITS.test(payload) || BigInt(payload) > INT8_MAX)) return "malformed cursor";
  return null;
}
