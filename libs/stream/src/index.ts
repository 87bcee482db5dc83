export * from "./token-event";
export * from "./token-streams";
export * from "./stream.errors";
