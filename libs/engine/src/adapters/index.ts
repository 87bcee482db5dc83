export { admissionPort } from "./admission-port";
export { cachingModelProvider, type CachingModelProvider, type ModelProviderOptions } from "./model-provider";
export { schedulerWorkSource, type PoisonCheck } from "./scheduler-work-source";
export { streamTokenSink } from "./stream-token-sink";
