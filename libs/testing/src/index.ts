export * from "./services";
export * from "./fixtures";
