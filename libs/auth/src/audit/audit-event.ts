import { z } from "zod";
import { AUDIT_DECISIONS, type AuditDecision } from "@lite/core";

export type { AuditDecision };

/** One audit event as it crosses the queue (API/worker → audit writer). */

export const AuditEvent = z.object({
  version: z.literal(1),
  eventId: z.string().min(1),
  /** ISO-8601 UTC, when the decision or change happened */
  at: z.string().datetime(),
  tenantId: z.string().nullable(),
  actor: z.string().min(1),
  action: z.string().min(1),
  resource: z.string().min(1),
  decision: z.enum(AUDIT_DECISIONS),
  reason: z.string().nullable(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

/** What callers pass: the queue fills in version, eventId and (unless given) the time. */
export interface AuditInput {
  tenantId?: string | null;
  actor: string;
  action: string;
  resource: string;
  decision: AuditDecision;
  reason?: string | null;
  at?: Date;
}
