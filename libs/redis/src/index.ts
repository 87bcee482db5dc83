export * from "./client";
export * from "./keys";
