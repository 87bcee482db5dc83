/** Unit tests sit beside the code (libs/*, apps/*); integration suites in test/. */
const fs = require("node:fs");
const swc = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, "utf8"));
delete swc.$schema;

module.exports = {
  // Shares the host realm's typed arrays with tests, which onnxruntime-node needs (see the file).
  testEnvironment: "<rootDir>/libs/model/src/testing/ort-test-environment.js",
  roots: ["<rootDir>/libs", "<rootDir>/apps", "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["@swc/jest", { ...swc, swcrc: false }] },
  moduleFileExtensions: ["ts", "js", "json"],
  setupFiles: ["reflect-metadata"],
  testTimeout: 60000,
  maxWorkers: 2,
  // Integration suites hold sockets to real services and child processes; a leak in one
  // failed suite must never leave `npm test` (and CI) hanging after the summary.
  forceExit: true,
};
