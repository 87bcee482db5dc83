/**
 * @lite/completions — the completion lifecycle (create, cancel, end, queries); the only
 * writer of `Completion` rows. Used by every transport (GraphQL today) and by the worker.
 */
export * from "./completion.types";
export * from "./create-completion";
export * from "./idempotency";
export * from "./admit-with-degrade";
export * from "./end-completion";
export * from "./streamed-output";
export * from "./cancel-completion";
export * from "./completion-queries";
export * from "./token-events";
export * from "./completion-row-store";
export * from "./create-intents";
export * from "./reconcile";
export * from "./completion-caches";
