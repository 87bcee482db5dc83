export * from "./services";
export * from "./fixtures";
export * from "./tcp-proxy";
