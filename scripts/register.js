// Runs TypeScript sources directly with SWC (keeps decorator metadata, which type-graphql needs).
process.env.SWCRC = process.env.SWCRC ?? "true";
require("@swc-node/register");
