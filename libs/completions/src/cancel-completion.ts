import { isTerminalStatus } from "@lite/core";
import { actorOf, type Principal } from "@lite/auth";
import type { CompletionResources, CompletionRow, CompletionView } from "./completion.types";
import { toCompletion, withLiveText } from "./completion-queries";
import { endUnheld } from "./end-completion";

/** How long cancel waits for a running completion's worker to end it, ms. */
const CANCEL_WAIT_MS = 3000;
const CANCEL_POLL_MS = 25;

export type CancelResources = Pick<
  CompletionResources,
  "db" | "scheduler" | "streams" | "admission" | "audit" | "clock" | "log"
>;

/**
 * cancelCompletion (the caller has already checked the principal may see `row`):
 *  1. a finished completion is returned unchanged;
 *  2. the scheduler sets the cancel flag and removes a waiting job; the decision is audited;
 *  3. a removed job is held by no worker, so it is ended here: `endUnheld` CANCELLED, with
 *     what its stream holds if it ran before (its worker died; Redis steps in the
 *     background if Redis is away);
 *  4. a running job is ended by its worker within one decode step: wait up to
 *     CANCEL_WAIT_MS for that, so the answer usually shows CANCELLED already.
 */
export async function cancelCompletion(
  r: CancelResources,
  principal: Principal,
  row: CompletionRow,
): Promise<CompletionView> {
  if (isTerminalStatus(row.status)) return toCompletion(row);
  const outcome = await r.scheduler.cancel(row.tenantId, row.id);
  await r.audit.record({
    tenantId: row.tenantId,
    actor: actorOf(principal),
    action: "completion.cancel",
    resource: `completion:${row.id}`,
    decision: "OK",
    reason: outcome,
  });
  if (outcome === "removed") {
    await endUnheld(r, { tenantId: row.tenantId, completionId: row.id }, "CANCELLED");
  } else {
    // Real time, not the resources' clock: this is a wait for another process.
    const deadline = Date.now() + CANCEL_WAIT_MS;
    while (Date.now() < deadline) {
      const now = await r.db.completion.findUniqueOrThrow({ where: { id: row.id } });
      if (isTerminalStatus(now.status)) return toCompletion(now);
      await new Promise((resolve) => setTimeout(resolve, CANCEL_POLL_MS));
    }
  }
  return withLiveText(r.streams, await r.db.completion.findUniqueOrThrow({ where: { id: row.id } }));
}
