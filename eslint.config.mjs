// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "var/", "dist/", "coverage/", "**/*.js", "!eslint.config.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      // Editor-time hint of two boundaries; the full rules (transitive reach, deep imports,
      // cycles, declared dependencies) are dependency-cruiser's: .dependency-cruiser.cjs.
      "no-restricted-imports": [
        "error",
        { paths: [{ name: "onnxruntime-node", message: "only libs/model imports onnxruntime-node" }] },
      ],
    },
  },
  {
    // Promises, with type information: one returned from a try block escapes its catch and
    // finally (a phase stop, a lock release runs while it is pending); one left floating or
    // passed where a callback's result is ignored can reject unhandled, which ends the process.
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["prisma.config.ts"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/return-await": ["error", "in-try-catch"],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
  {
    // CommonJS config files (.dependency-cruiser.cjs)
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
  {
    files: ["libs/model/**/*.ts"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // The API must never load the model runtime (it would pull onnxruntime-node).
    files: ["apps/api/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: [
            { name: "onnxruntime-node", message: "only libs/model imports onnxruntime-node" },
            { name: "@lite/model", message: "the API must not load the model runtime; use @lite/manifest" },
          ],
        },
      ],
    },
  },
);
