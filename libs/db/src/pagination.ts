import { badInput } from "@lite/core";

/** Opaque cursors over prefixed, time-sortable ids; lists are newest first. */
export function encodeCursor(id: string): string {
  return Buffer.from(`c1:${id}`, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string, field = "after"): string {
  const raw = Buffer.from(cursor, "base64url").toString("utf8");
  if (!raw.startsWith("c1:") || raw.length < 4) throw badInput(field, "malformed cursor");
  return raw.slice(3);
}

export const MAX_PAGE_SIZE = 500;

export function checkFirst(first: number, field = "first"): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput(field, `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return first;
}

/** Given rows fetched with take = first + 1, build the page and its info. */
export function page<T extends { id: string }>(rows: T[], first: number) {
  const nodes = rows.slice(0, first);
  const last = nodes[nodes.length - 1];
  return {
    nodes,
    pageInfo: { hasNextPage: rows.length > first, endCursor: last ? encodeCursor(last.id) : null },
  };
}
