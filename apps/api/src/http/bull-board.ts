import type { Express, NextFunction, Request, Response } from "express";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { ApiServices } from "../services";
import { refusedAsOperator } from "./operator-auth";

export const BULL_BOARD_PATH = "/admin/queues";

/** Queues the board lists at most (waiting work first): each listed queue costs Redis calls per page view. */
export const BULL_BOARD_MAX_QUEUES = 200;

/** How often the list of tenant queues is read from the scheduler's index, at most. */
const REFRESH_MS = 1000;

/**
 * bull-board at /admin/queues, for ADMIN keys only (refusedAsOperator: 401 without a valid
 * key, 403 for TENANT and FINANCE). A browser logs in through its own prompt (HTTP Basic, the
 * ADMIN key as password), since the board's page calls its API with no header of its own;
 * `Authorization: Bearer` works as everywhere. The board shows every tenant's BullMQ queue
 * the scheduler's index knows (libs/scheduler inspectQueues: waiting work first, at most
 * BULL_BOARD_MAX_QUEUES), named `<tenant id>:completions`, re-read at most once a second.
 * Read-only: removing, retrying or pausing a job by hand would bypass the completion
 * lifecycle (admission counters, usage, the row), so the board only shows.
 */
export function mountBullBoard(app: Express, services: ApiServices): void {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: "Tenant queues" } },
  });
  const adapters = new Map<string, BullMQAdapter>();
  let refreshedAtMs = -Infinity;
  let refreshing: Promise<void> | undefined;

  const refresh = async (): Promise<void> => {
    const listed = await services.completions.scheduler.inspectQueues(BULL_BOARD_MAX_QUEUES);
    const next: BullMQAdapter[] = [];
    for (const { tenantId, queue } of listed) {
      let a = adapters.get(tenantId);
      if (!a) {
        a = new BullMQAdapter(queue, { readOnlyMode: true, prefix: `${tenantId}:`, description: `tenant ${tenantId}` });
        adapters.set(tenantId, a);
      }
      next.push(a);
    }
    const keep = new Set(listed.map((l) => l.tenantId));
    for (const id of adapters.keys()) if (!keep.has(id)) adapters.delete(id);
    board.replaceQueues(next);
    refreshedAtMs = Date.now();
  };

  const guard = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const page = { resource: "queues", path: BULL_BOARD_PATH, basic: true };
    if (await refusedAsOperator(services, req, res, page)) return;
    if (Date.now() - refreshedAtMs >= REFRESH_MS) {
      refreshing ??= refresh().finally(() => (refreshing = undefined));
      try {
        await refreshing;
      } catch (e) {
        // The board still answers with the last list; the next request tries again.
        services.log.warn({ err: e }, "could not list tenant queues for bull-board");
      }
    }
    next();
  };
  app.use(BULL_BOARD_PATH, guard, serverAdapter.getRouter());
}
