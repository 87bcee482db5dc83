export * from "./job-catalog";
export * from "./admission";
export * from "./fair-scheduler";
export * from "./dispatched-job";
export { SchedulerIndex } from "./scheduler-index";
export type { SweepResult } from "./stalled-sweeper";
