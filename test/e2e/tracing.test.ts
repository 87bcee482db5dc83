/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
/**
 * One completion's OpenTelemetry trace, end to end (issue 11 item 3): the API in this
 * process (startStack) and a worker composed in this process (apps/worker compose.ts, the
 * same wiring as its main) share one tracer provider whose spans go to an InMemorySpanExporter;
 * the job crosses Redis (BullMQ) as in production, carrying the W3C traceparent of the API's
 * enqueue span. The trace continues the client's `traceparent` header and holds, in order,
 * with parent links: POST /graphql → completion.create → completion.admission →
 * completion.enqueue → completion.queue_wait and completion.process → completion.dispatch →
 * completion.prefill → completion.decode → completion.stream_end. No span carries the prompt,
 * the output text or the API key. The same completion's KV byte-seconds are recorded once.
 */
import pino from "pino";
import { CREATE_COMPLETION, untilCompletionEnds } from "@lite/testing";
import {
  InMemorySpanExporter,
  startTracing,
  TracingEnvSchema,
  tracingOptionsOf,
  type ReadableSpan,
  type Tracing,
} from "@lite/tracing";
import {
  closeWorker,
  composeWorker,
  connectWorker,
  type Worker,
  type WorkerConnections,
} from "../../apps/worker/src/compose";
import { loadWorkerEnv } from "../../apps/worker/src/env";
import { startStack, type TestStack } from "../support/stack";

const CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
const PROMPT = "a secret prompt marker zq7";

let exporter: InMemorySpanExporter;
let tracing: Tracing;
let stack: TestStack;
let connections: WorkerConnections;
let worker: Worker;

beforeAll(async () => {
  exporter = new InMemorySpanExporter();
  // no OTEL_* variable: the options name no exporter; the test adds its in-memory one
  const opts = tracingOptionsOf(TracingEnvSchema.parse({}), "lite-llm-test");
  expect(opts.exporters).toEqual([]);
  tracing = startTracing(opts, { exporters: [exporter] });
  stack = await startStack({ model: "tiny" });
  const env = loadWorkerEnv({
    DATABASE_URL: stack.env.databaseUrl,
    REDIS_URL: stack.env.redisUrl,
    REDIS_PREFIX: stack.env.redisPrefix,
    MODEL_DIR: stack.modelDir,
    WORKER_ID: "w-trace",
    WORKER_BATCH_SIZE: "4",
    WORKER_METRICS_PORT: "-1",
    LOG_LEVEL: "silent",
  });
  const log = pino({ level: "silent" });
  connections = connectWorker(env, log);
  worker = composeWorker(env, connections, log);
  await worker.models.get("tiny");
  worker.engine.start();
}, 120_000);

afterAll(async () => {
  await worker?.engine.stop();
  if (worker) await closeWorker(worker, connections, pino({ level: "silent" }));
  await stack?.close();
  await tracing?.shutdown();
});

it("traces one completion from the GraphQL request to the stream's end, in order, with parent links", async () => {
  const tenant = await stack.tenant();
  const res = await fetch(stack.api.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${tenant.secret}`,
      traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
    },
    body: JSON.stringify({
      query: CREATE_COMPLETION,
      variables: { input: { prompt: PROMPT, maxTokens: 12, mode: "FAST", seed: "5" } },
    }),
  });
  const body = (await res.json()) as { data: { createCompletion: { id: string } } };
  const id = body.data.createCompletion.id;
  const row = await untilCompletionEnds(tenant.http, id);
  expect(row.status).toBe("COMPLETED");
  // the process span ends once the job left its queue, just after the row is final
  const spansOf = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === CLIENT_TRACE);
  const deadline = Date.now() + 10_000;
  while (!spansOf().some((s) => s.name === "completion.process") && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));

  const spans = spansOf();
  const one = (name: string): ReadableSpan => {
    const found = spans.filter((s) => s.name === name);
    expect({ name, count: found.length }).toEqual({ name, count: 1 });
    return found[0];
  };
  const http = one("POST /graphql");
  const create = one("completion.create");
  const admission = one("completion.admission");
  const enqueue = one("completion.enqueue");
  const queueWait = one("completion.queue_wait");
  const processSpan = one("completion.process");
  const dispatch = one("completion.dispatch");
  const prefill = one("completion.prefill");
  const decode = one("completion.decode");
  const streamEnd = one("completion.stream_end");

  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
  expect(parentOf(http)).toBe(CLIENT_SPAN);
  expect(parentOf(create)).toBe(http.spanContext().spanId);
  expect(parentOf(admission)).toBe(create.spanContext().spanId);
  expect(parentOf(enqueue)).toBe(create.spanContext().spanId);
  expect(parentOf(queueWait)).toBe(enqueue.spanContext().spanId);
  expect(parentOf(processSpan)).toBe(enqueue.spanContext().spanId);
  for (const s of [dispatch, prefill, decode, streamEnd]) expect(parentOf(s)).toBe(processSpan.spanContext().spanId);

  // In order. The API's spans take the SDK's clock, the worker's the engine's (Date.now):
  // across the two, allow a few ms of skew; within each, exact.
  const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
  const start = (s: ReadableSpan) => ms(s.startTime);
  const end = (s: ReadableSpan) => ms(s.endTime);
  const SKEW = 25;
  const order = [http, create, admission, enqueue];
  for (let i = 1; i < order.length; i++) expect(start(order[i])).toBeGreaterThanOrEqual(start(order[i - 1]));
  expect(start(enqueue)).toBeGreaterThanOrEqual(end(admission));
  expect(start(queueWait)).toBeGreaterThanOrEqual(start(enqueue) - SKEW);
  expect(end(queueWait)).toBe(start(processSpan));
  expect(start(dispatch)).toBe(start(processSpan));
  expect(start(prefill)).toBe(end(dispatch));
  expect(start(decode)).toBe(end(prefill));
  expect(start(streamEnd)).toBe(end(decode));
  expect(end(streamEnd)).toBe(end(processSpan));
  expect(end(decode)).toBeGreaterThan(start(decode)); // 11 tokens after the first

  // what they say: ids, counts, outcome
  expect(processSpan.attributes).toMatchObject({
    "lite.tenant.id": tenant.tenantId,
    "lite.completion.id": id,
    "lite.model": "tiny",
    "lite.mode": "FAST",
    "lite.output_tokens": row.outputTokens,
    "lite.status": "COMPLETED",
    "lite.worker.id": "w-trace",
  });
  expect(create.attributes).toMatchObject({ "lite.tenant.id": tenant.tenantId, "lite.completion.id": id });
  expect(http.attributes).toMatchObject({ "http.response.status_code": 200 });
  // never the prompt, the output or the key
  const said = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events]));
  expect(said).not.toContain("zq7");
  expect(said).not.toContain(tenant.secret);
  if (row.text.trim().length > 3) expect(said).not.toContain(row.text);

  // KV byte-seconds of the same completion: one event, for its tenant
  const kv = await stack.env.db.usageEvent.findMany({ where: { completionId: id, meter: "KV_BYTE_SECONDS" } });
  expect(kv).toHaveLength(1);
  expect(kv[0].tenantId).toBe(tenant.tenantId);
  expect(kv[0].quantity).toBeGreaterThan(0n);
}, 90_000);
