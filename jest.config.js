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
  // No forceExit: every suite closes what it opens (connections, servers, child processes,
  // timers), so jest exits by itself; a leak shows up as a hang, not as a hidden handle.
};
