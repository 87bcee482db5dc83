/**
 * Idempotency keys for createCompletion: a client whose connection reset retries with the
 * same key and gets the same completion, admitted, queued and billed once.
 *  1. The key: 1..128 printable ASCII characters (0x20–0x7E), scoped to the tenant (another
 *     tenant's identical key is independent).
 *  2. Before admission (`replayOf`): a key this tenant used within the TTL answers its
 *     completion as it is now if the request hash matches (the normalised input, below), and
 *     CONFLICT if it does not; no key, or an expired one, goes on to create.
 *  3. The claim (`createRowClaimingKey`): the row and the key in one transaction, after
 *     deleting this tenant's expired row of that key. The key's primary key (tenantId, key)
 *     lets one of two concurrent creates commit; the other gets a unique violation, its
 *     transaction (row included) rolls back, and the caller releases its reservation and
 *     answers the winner's completion (step 2 again).
 *  4. A completion that could not be queued releases its key (`releaseKey`): the client was
 *     told UNAVAILABLE, so its retry must create anew, not replay a FAILED completion.
 */
import { createHash } from "node:crypto";
import { badInput, DEFAULT_TIER_MODE, DomainError, err, ok, type Result } from "@lite/core";
import { Prisma, type PrismaClient } from "@lite/db";
import type { CompletionInput, CompletionResources, CompletionRow, CompletionView } from "./completion.types";
import { toCompletion } from "./completion-queries";
import { insertCompletion, type NewCompletion } from "./completion-insert";

/** Longest idempotency key, in characters. */
export const IDEMPOTENCY_KEY_MAX_CHARS = 128;
/** How long a key holds its completion by default (the API: IDEMPOTENCY_TTL_HOURS). */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** The field every idempotency refusal names, whichever way the key came. */
export const IDEMPOTENCY_KEY_FIELD = "input.idempotencyKey";

const PRINTABLE_ASCII = /^[\x20-\x7E]+$/;

/** What is wrong with a key, or null. */
export function checkIdempotencyKey(key: string): string | null {
  if (key.length < 1 || key.length > IDEMPOTENCY_KEY_MAX_CHARS || !PRINTABLE_ASCII.test(key)) {
    return `must be 1 to ${IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters`;
  }
  return null;
}

/** A key with the hash of the request it was sent with. */
export interface IdempotencyClaim {
  key: string;
  requestHash: string;
}

/**
 * sha256 of the input with its defaults applied (mode BALANCED unless tiers are given,
 * temperature 0, absent model and seed as null), so that a retry spelling a default out
 * and one leaving it unsaid are the same request.
 */
export function requestHash(input: CompletionInput): string {
  const normalised = [
    input.model ?? null,
    input.prompt,
    input.maxTokens,
    input.tiers ? null : (input.mode ?? DEFAULT_TIER_MODE),
    input.tiers ?? null,
    input.seed ?? null,
    input.temperature ?? 0,
  ];
  return createHash("sha256").update(JSON.stringify(normalised)).digest("hex");
}

export function claimOf(input: CompletionInput): IdempotencyClaim | null {
  return input.idempotencyKey == null ? null : { key: input.idempotencyKey, requestHash: requestHash(input) };
}

type KeyResources = Pick<CompletionResources, "db" | "clock" | "idempotencyTtlMs">;

/** Keys created before this instant have expired. */
function cutoff(r: KeyResources): Date {
  return new Date(r.clock.nowMs() - (r.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS));
}

/** Step 2: the completion a live key holds (or CONFLICT for another request); null when none. */
export async function replayOf(
  r: KeyResources,
  tenantId: string,
  claim: IdempotencyClaim,
): Promise<Result<CompletionView> | null> {
  const held = await r.db.completionIdempotencyKey.findUnique({
    where: { tenantId_key: { tenantId, key: claim.key } },
    include: { completion: true },
  });
  if (!held || held.createdAt < cutoff(r)) return null;
  if (held.requestHash !== claim.requestHash) {
    return err(
      new DomainError(
        "CONFLICT",
        `${IDEMPOTENCY_KEY_FIELD}: this key was used for a different request (completion ${held.completionId}); use a new key`,
        { field: IDEMPOTENCY_KEY_FIELD },
      ),
    );
  }
  return ok(toCompletion(held.completion));
}

/**
 * Step 3: the row, and the key when there is one, in one transaction. "taken": another
 * create holds the key (nothing was written).
 */
export async function createRowClaimingKey(
  r: KeyResources,
  data: NewCompletion,
  claim: IdempotencyClaim | null,
): Promise<CompletionRow | "taken"> {
  if (!claim) return insertCompletion(r.db, data);
  const { tenantId } = data;
  try {
    return await r.db.$transaction(async (tx) => {
      await tx.completionIdempotencyKey.deleteMany({
        where: { tenantId, key: claim.key, createdAt: { lt: cutoff(r) } },
      });
      const row = await insertCompletion(tx, data);
      await tx.completionIdempotencyKey.create({
        data: { tenantId, key: claim.key, completionId: row.id, requestHash: claim.requestHash, createdAt: now(r) },
      });
      return row;
    });
  } catch (e) {
    if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002") return "taken";
    throw e;
  }
}

function now(r: KeyResources): Date {
  return new Date(r.clock.nowMs());
}

/** Step 4: the key no longer holds this completion. */
export async function releaseKey(db: PrismaClient, completionId: string): Promise<void> {
  await db.completionIdempotencyKey.deleteMany({ where: { completionId } });
}

/** Step 1 as createCompletion's input check runs it. */
export function checkInputKey(input: CompletionInput): DomainError | null {
  if (input.idempotencyKey == null) return null;
  const problem = checkIdempotencyKey(input.idempotencyKey);
  return problem ? badInput(IDEMPOTENCY_KEY_FIELD, problem) : null;
}
