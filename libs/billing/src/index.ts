export * from "./price-book";
