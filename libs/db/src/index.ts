export * from "./client";
export * from "./pagination";
