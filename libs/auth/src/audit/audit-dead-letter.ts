import fs from "node:fs";
import path from "node:path";
import type { Redis, RedisKeys } from "@lite/redis";
import { auditDeadLetterKey, auditStreamKey } from "./audit-queue";

/**
 * The dead-letter stream of the audit queue. An entry lands here only when the writer
 * could not store it even after sanitising: it does not parse as an AuditEvent
 * (`malformed`), or PostgreSQL refused it on its own twice while answering other queries
 * (`rejected`). Each dead letter keeps the queued payload verbatim, so an operator can fix
 * and re-queue it (XADD the `e` field to the queue: the eventId makes that idempotent).
 * The stream is never trimmed: nothing accepted is dropped, and its length is a gauge.
 */
export type QuarantineReason = "malformed" | "rejected";

export interface AuditDeadLetter {
  /** the dead-letter entry's id */
  id: string;
  /** the id the entry had in the queue */
  entryId: string;
  reason: QuarantineReason;
  /** why it could not be stored (first 1000 characters) */
  error: string;
  /** the queued payload, verbatim (absent when the entry had no `e` field) */
  payload: string | null;
  /** ISO-8601, when it was quarantined */
  at: string;
}

const ERROR_MAX_CHARS = 1000;
const COMMAND = "liteAuditQuarantine";
const LUA = fs.readFileSync(path.join(__dirname, "lua", "audit-quarantine-2.lua"), "utf8");

type QuarantineCommand = (queue: string, dead: string, entryId: string, ...fields: string[]) => Promise<string | null>;

/**
 * Moves one queue entry to the dead-letter stream atomically (XDEL and XADD in one
 * script, so two writers quarantining the same entry leave one dead letter). Returns
 * false when the entry had already left the queue.
 */
export async function quarantineAuditEntry(
  redis: Redis,
  keys: RedisKeys,
  entry: { id: string; fields: string[] },
  reason: QuarantineReason,
  error: string,
  at: Date,
): Promise<boolean> {
  const r = redis as unknown as Record<string, QuarantineCommand | undefined>;
  if (typeof r[COMMAND] !== "function") redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: LUA });
  const payload = fieldOf(entry.fields, "e");
  const dead = [
    "entry",
    entry.id,
    "reason",
    reason,
    "error",
    error.slice(0, ERROR_MAX_CHARS),
    "at",
    at.toISOString(),
    ...(payload === undefined ? ["fields", JSON.stringify(entry.fields)] : ["e", payload]),
  ];
  const moved = await (r[COMMAND] as QuarantineCommand)(
    auditStreamKey(keys),
    auditDeadLetterKey(keys),
    entry.id,
    ...dead,
  );
  return moved !== null;
}

/** The quarantined entries, oldest first (operators, tests). */
export async function readAuditDeadLetters(redis: Redis, keys: RedisKeys, count = 100): Promise<AuditDeadLetter[]> {
  const entries = await redis.xrange(auditDeadLetterKey(keys), "-", "+", "COUNT", count);
  return entries.map(([id, fields]) => ({
    id,
    entryId: fieldOf(fields, "entry") ?? "",
    reason: fieldOf(fields, "reason") as QuarantineReason,
    error: fieldOf(fields, "error") ?? "",
    payload: fieldOf(fields, "e") ?? null,
    at: fieldOf(fields, "at") ?? "",
  }));
}

/** The value of `name` in a stream entry's flat field list. */
export function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
