/** GraphQL operations and shapes the suites, benchmarks and the demo share. */

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
