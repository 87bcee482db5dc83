import type { AuditEvent } from "./audit-event";

/**
 * Makes an audit event storable whatever a request put in it. Audit events echo
 * caller-controlled text (ids, names, reasons); PostgreSQL `text` refuses NUL bytes, and
 * a lone UTF-16 surrogate cannot be encoded, so one such event used to stop the writer.
 *
 * 1. NUL and every lone surrogate become a visible JSON-style escape (`\u0000`, `\ud800`),
 *    so an auditor still sees what was sent; well-formed text is left untouched.
 * 2. A field longer than its maximum (AUDIT_FIELD_MAX_CHARS, UTF-16 code units, counted
 *    after step 1) keeps its head and ends with TRUNCATION_MARKER and the original length,
 *    the whole within the maximum; a surrogate pair is never cut in half.
 *
 * Deterministic and idempotent: the queue applies it on enqueue (bounding what Redis
 * holds) and the writer again before hashing (events queued by older code), and the row
 * hashed is the row stored, so the chain verifies.
 */

/** Maximum stored length per field, UTF-16 code units (after escaping). */
export const AUDIT_FIELD_MAX_CHARS = {
  eventId: 128,
  tenantId: 128,
  actor: 256,
  action: 128,
  resource: 512,
  reason: 2048,
} as const;
export type AuditTextField = keyof typeof AUDIT_FIELD_MAX_CHARS;

/** Ends a truncated field, followed by the original length and `]`, e.g. `…[truncated 150000]`. */
export const TRUNCATION_MARKER = "…[truncated ";

// NUL, a high surrogate not followed by a low one, a low surrogate not preceded by a high one.
// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const escapeUnit = (unit: string): string => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** Returns the storable form of `value` and whether anything had to change. */
export function sanitiseAuditText(value: string, maxChars: number): { text: string; changed: boolean } {
  const escaped = value.replace(UNSTORABLE, escapeUnit);
  if (escaped.length <= maxChars) return { text: escaped, changed: escaped !== value };
  const tail = `${TRUNCATION_MARKER}${value.length}]`;
  let cut = Math.max(0, maxChars - tail.length);
  const last = escaped.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1; // keep the pair whole
  return { text: escaped.slice(0, cut) + tail, changed: true };
}

/**
 * The storable form of an event, and the fields that changed (for the metric). Fields
 * already storable are returned as they are.
 */
export function sanitiseAuditEvent(event: AuditEvent): { event: AuditEvent; changed: AuditTextField[] } {
  const changed: AuditTextField[] = [];
  const fix = (field: AuditTextField, value: string): string => {
    const r = sanitiseAuditText(value, AUDIT_FIELD_MAX_CHARS[field]);
    if (r.changed) changed.push(field);
    return r.text;
  };
  const out: AuditEvent = {
    ...event,
    eventId: fix("eventId", event.eventId),
    tenantId: event.tenantId === null ? null : fix("tenantId", event.tenantId),
    actor: fix("actor", event.actor),
    action: fix("action", event.action),
    resource: fix("resource", event.resource),
    reason: event.reason === null ? null : fix("reason", event.reason),
  };
  return { event: changed.length === 0 ? event : out, changed };
}
