/**
 * @lite/engine — the worker's continuous-batch loop: fill under hold caps, job start and
 * resume, step and flush, finalise. It talks only to its ports (ports.ts); `adapters/`
 * implements them over libs/scheduler, libs/stream and libs/model. See README.md.
 */
export { BatchEngine } from "./batch-engine";
export type { EngineStats } from "./engine-context";
export type { BatchEngineDeps, BatchEngineOptions } from "./engine-options";
export { errText } from "./err-text";
export * from "./ports";
export * from "./adapters";
