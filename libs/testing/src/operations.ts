/** GraphQL operations and shapes the suites, benchmarks and the demo share. */
import type { GqlHttp } from "./gql-http";
import { waitFor } from "./wait-for";

export interface TokenEvent {
  completionId: string;
  index: number;
  tokenId: number;
  text: string;
  done: boolean;
  finishReason: string | null;
}

export const TOKENS_SUBSCRIPTION = `subscription($id: ID!, $from: Int) {
  completionTokens(id: $id, fromIndex: $from) { completionId index tokenId text done finishReason }
}`;

export const CREATE_COMPLETION = `mutation($input: CompletionInput!) {
  createCompletion(input: $input) { id tenantId status mode tierSet degraded seed promptTokens createdAt }
}`;

export const COMPLETION_QUERY = `query($id: ID!) {
  completion(id: $id) { id tenantId status mode tierSet degraded seed promptTokens outputTokens text finishReason createdAt startedAt finishedAt }
}`;

export const CANCEL_COMPLETION = `mutation($id: ID!) { cancelCompletion(id: $id) { id status finishReason outputTokens text } }`;

/** A completion as COMPLETION_QUERY answers it (the fields the suites read). */
export interface CompletionRowView {
  id: string;
  status: string;
  text: string;
  outputTokens: number;
  finishReason: string | null;
}

const FINAL_STATUSES = ["COMPLETED", "CANCELLED", "FAILED"];

/** Polls COMPLETION_QUERY with this tenant's client until the completion is final; returns it. */
export async function untilCompletionEnds(
  http: Pick<GqlHttp, "ok">,
  id: string,
  timeoutMs = 40000,
): Promise<CompletionRowView> {
  return waitFor(
    `completion ${id} to end`,
    async () => {
      const q = await http.ok<{ completion: CompletionRowView }>(COMPLETION_QUERY, { id });
      return FINAL_STATUSES.includes(q.completion.status) ? q.completion : undefined;
    },
    { timeoutMs },
  );
}
