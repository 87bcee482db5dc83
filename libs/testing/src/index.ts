/**
 * @lite/testing — the one test harness (test-only): per-file services, the stack builder
 * (API in-process or as a process, worker processes), tenant and key factories with
 * pinnable ids, the GraphQL client (HTTP and graphql-ws), waitFor, and a TCP proxy for
 * fault tests. See README.md.
 */
export { adminQuery, createTestEnv, withDatabase, type TestEnv, type TestEnvOptions } from "./services";
export { seedModel, TINY_TIERS } from "./model-fixture";
export { createKey, createTenant, type CreateTenantOptions, type TenantWithKey } from "./tenants";
export { codeOf, gql, gqlOk, GqlHttp, type GqlError, type GqlResponse } from "./gql-http";
export { collectTokens, wsClient, wsConnect, wsUrlOf, type WsConnectOutcome } from "./gql-ws";
export {
  CANCEL_COMPLETION,
  COMPLETION_QUERY,
  CREATE_COMPLETION,
  TOKENS_SUBSCRIPTION,
  type TokenEvent,
  untilCompletionEnds,
  type CompletionRowView,
} from "./operations";
export { sleep, waitFor, withTimeout, type WaitForOptions } from "./wait-for";
export { freePort } from "./child-process";
export { scrapeWorkerMetrics, spawnWorker, type WorkerProcess, type WorkerProcessOptions } from "./worker";
export {
  apiProcess,
  startApiProcess,
  type ApiHandle,
  type ApiLauncher,
  type ApiProcess,
  type ApiProcessOptions,
} from "./api";
export {
  startStack,
  testModelDir,
  TEST_ADMIN_KEY,
  type ServiceName,
  type Stack,
  type StackOptions,
  type StackTenant,
  type StackWorkerOptions,
} from "./stack";
export { hostPort, startTcpProxy, type TcpProxy } from "./tcp-proxy";
export { findRedisServer, startRedisCluster, type RedisCluster, type RedisClusterOptions } from "./redis-cluster";
