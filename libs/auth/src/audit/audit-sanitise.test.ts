import { AUDIT_FIELD_MAX_CHARS, TRUNCATION_MARKER, sanitiseAuditEvent, sanitiseAuditText } from "./audit-sanitise";
import type { AuditEvent } from "./audit-event";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe("sanitiseAuditText", () => {
  it("leaves storable text alone, pairs and all", () => {
    expect(sanitiseAuditText("tenant:ten_01 😀 é", 100)).toEqual({ text: "tenant:ten_01 😀 é", changed: false });
  });

  it("escapes NUL and lone surrogates visibly", () => {
    expect(sanitiseAuditText("a\u0000b\ud800c\udc00d", 100)).toEqual({
      text: "a\\u0000b\\ud800c\\udc00d",
      changed: true,
    });
    expect(sanitiseAuditText("\udc00\ud800", 100).text).toBe("\\udc00\\ud800"); // reversed pair: both lone
  });

  it("truncates to the maximum with a marker naming the original length, never splitting a pair", () => {
    for (const max of [40, 41, 42, 43]) {
      const { text } = sanitiseAuditText("😀".repeat(100), max);
      expect(text.length).toBeLessThanOrEqual(max);
      expect(text.endsWith(`${TRUNCATION_MARKER}200]`)).toBe(true);
      expect(text).not.toMatch(LONE_SURROGATE);
    }
  });

  it("is idempotent", () => {
    for (const input of ["x\u0000".repeat(1000), "\ud800".repeat(5), "plain"]) {
      const once = sanitiseAuditText(input, 128).text;
      expect(sanitiseAuditText(once, 128)).toEqual({ text: once, changed: false });
    }
  });
});

describe("sanitiseAuditEvent", () => {
  const event: AuditEvent = {
    version: 1,
    eventId: "aud_1",
    at: "2026-01-01T00:00:00.000Z",
    tenantId: null,
    actor: "key:k",
    action: "access.owner",
    resource: "tenant:x",
    decision: "DENY",
    reason: null,
  };

  it("returns the same event when nothing needs fixing", () => {
    expect(sanitiseAuditEvent(event)).toEqual({ event, changed: [] });
  });

  it("fixes each field within its own maximum and names the fields it changed", () => {
    const r = sanitiseAuditEvent({ ...event, resource: `tenant:${"x".repeat(10_000)}`, reason: "a\u0000" });
    expect(r.changed).toEqual(["resource", "reason"]);
    expect(r.event.resource.length).toBeLessThanOrEqual(AUDIT_FIELD_MAX_CHARS.resource);
    expect(r.event.reason).toBe("a\\u0000");
    expect(r.event.eventId).toBe("aud_1");
  });
});
