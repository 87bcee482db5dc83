/**
 * Module boundaries, checked by `npm test` (step "boundaries", scripts/check-boundaries.ts).
 * Why each rule exists is in its comment; the message printed on a violation says what to do.
 * Type-only imports count (tsPreCompilationDeps): a type import still couples the packages and
 * is one edit away from a runtime import.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      // The API process must never load the model runtime: onnxruntime-node is ~100 MB of native
      // code and spawns threads. Transitive: a library the API uses must not pull it in either.
      name: "api-not-to-model",
      severity: "error",
      comment: "apps/api must not reach libs/model or onnxruntime-node, even through another module",
      from: { path: "^apps/api/" },
      to: { path: "^(libs/model/|node_modules/onnxruntime-node/|onnxruntime-node$)", reachable: true },
    },
    {
      // One owner of the native runtime: everything else talks to it through @lite/model.
      name: "only-model-imports-onnxruntime",
      severity: "error",
      comment: "only libs/model imports onnxruntime-node; use @lite/model",
      from: { pathNot: "^libs/model/" },
      to: { path: "^(node_modules/onnxruntime-node/|onnxruntime-node$)" },
    },
    {
      // A package is used through its package name and its declared exports; reaching into
      // `@lite/x/src/...` couples to files the owner may move, and bypasses the boundary rules.
      name: "no-deep-imports",
      severity: "error",
      comment: "import @lite/<name> (its index), not a file inside it",
      from: {},
      to: { path: "^@lite/[^/]+/.+" },
    },
    {
      // The same through a relative path, or through a package name that resolves past its
      // index (a package without `exports`): from outside libs/<x>, only its
      // src/index.ts may be reached. $1 is the importing package (or top folder), so a
      // package's own files are exempt.
      name: "no-deep-imports-resolved",
      severity: "error",
      comment: "import @lite/<name> (its index), not a file inside it",
      from: { path: "^((?:libs|apps)/[^/]+|[^/]+)" },
      to: { path: "^libs/[^/]+/", pathNot: ["^$1/", "^libs/[^/]+/src/index\\.ts$"] },
    },
    {
      // libs/<x> from another package or from test/, bench/, scripts/: by name, so the
      // package graph (package.json dependencies, turbo's hashes) sees the edge.
      name: "workspace-by-name",
      severity: "error",
      comment: "import another workspace package by its name (@lite/<name>), not by relative path",
      from: { path: "^((?:libs|apps)/[^/]+|[^/]+)" },
      to: { path: "^libs/", pathNot: "^$1/", dependencyTypes: ["local"], dependencyTypesNot: ["aliased"] },
    },
    {
      // Dependencies point one way: apps → libraries. A library importing an app would make
      // the app's composition (env, servers) part of every consumer.
      name: "libs-not-to-apps",
      severity: "error",
      comment: "libraries (libs/*) never import apps (apps/*)",
      from: { path: "^libs/" },
      to: { path: "^apps/" },
    },
    {
      name: "apps-not-to-other-apps",
      severity: "error",
      comment: "an app never imports another app; share code through a library",
      from: { path: "^apps/([^/]+)/" },
      to: { path: "^apps/", pathNot: "^apps/$1/" },
    },
    {
      name: "libs-not-to-tooling",
      severity: "error",
      comment: "libraries never import test/, bench/ or scripts/",
      from: { path: "^libs/" },
      to: { path: "^(test|bench|scripts)/" },
    },
    {
      // Cycles make load order matter (a half-initialised module at import time) and hide
      // which file owns a concept.
      name: "no-circular",
      severity: "error",
      comment: "no import cycles; move the shared part into its own module",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "this import does not resolve (missing package, or a path its package does not export)",
      from: {},
      // (deep @lite imports, unresolvable once `exports` is declared, are no-deep-imports)
      to: { couldNotResolve: true, pathNot: "^@lite/[^/]+/." },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // apps/api/dashboard: browser ES modules served as files (/dashboard), importing by URL, not Node modules.
    exclude: { path: "^(var|dist|coverage)/|^apps/api/dashboard/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["require", "node", "default", "types"],
      mainFields: ["main", "types"],
      extensions: [".ts", ".js", ".json", ".d.ts"],
    },
    skipAnalysisNotInRules: true,
    cache: false,
  },
};
