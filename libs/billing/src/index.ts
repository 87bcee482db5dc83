export * from "./price-book";
export * from "./billing.service";
