/** The billable meters (the contract's `Meter` enum), shared by usage events and price books. */
export const METERS = [
  "INPUT_TOKENS",
  "OUTPUT_TOKENS",
  "EXPERT_CALLS",
  "PREFETCH_BYTES",
  "TIERSET_ACTIVATIONS",
  "KV_BYTE_SECONDS",
] as const;
export type Meter = (typeof METERS)[number];
