export * from "./ids";
export * from "./errors";
export * from "./clock";
export * from "./transient";
export * from "./vocabulary";
export * from "./retry";
export * from "./ttl-cache";
