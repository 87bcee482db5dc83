/**
 * Traces across real processes (issue 11 item 3): an API process and a worker process,
 * configured only by the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
 * OTEL_BSP_SCHEDULE_DELAY), export OTLP/HTTP JSON to a small receiver this test runs. One
 * completion's spans from both services share one trace, the worker's `completion.process`
 * is a child of the API's `completion.enqueue` (the traceparent crossed in the BullMQ job),
 * and no span holds the prompt. A stack without OTEL_* variables exports nothing (every
 * other suite; the receiver here gets only this stack's posts).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { apiProcess, CREATE_COMPLETION, startStack, untilCompletionEnds, type Stack } from "@lite/testing";
import { E2E_WORKER_ENV } from "../support/stack";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
  service: string;
}

const received: OtlpSpan[] = [];
const paths: string[] = [];
let receiver: http.Server;
let stack: Stack;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      paths.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: Omit<OtlpSpan, "service">[] }>;
        }>;
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const ss of rs.scopeSpans) for (const s of ss.spans) received.push({ ...s, service });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: "100" };
  stack = await startStack({
    api: apiProcess(),
    model: "tiny",
    apiEnv: { ...otel, OTEL_SERVICE_NAME: "api-under-test" },
    workers: 1,
    workerEnv: { ...E2E_WORKER_ENV, ...otel, OTEL_SERVICE_NAME: "worker-under-test" },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

it("one completion's spans from the API and the worker process form one trace", async () => {
  const tenant = await stack.tenant();
  const created = await tenant.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
    input: { prompt: "otlp prompt marker qx9", maxTokens: 8, mode: "FAST", seed: "3" },
  });
  const id = created.createCompletion.id;
  expect((await untilCompletionEnds(tenant.http, id)).status).toBe("COMPLETED");
  const attr = (s: OtlpSpan, key: string) => s.attributes?.find((a) => a.key === key)?.value;
  const deadline = Date.now() + 20_000;
  let processSpan: OtlpSpan | undefined;
  while (Date.now() < deadline) {
    processSpan = received.find(
      (s) => s.name === "completion.process" && attr(s, "lite.completion.id")?.stringValue === id,
    );
    if (processSpan && received.some((s) => s.name === "completion.create" && s.traceId === processSpan!.traceId))
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(processSpan).toBeDefined();
  const trace = received.filter((s) => s.traceId === processSpan!.traceId);
  const byName = (name: string) => {
    const found = trace.filter((s) => s.name === name);
    expect({ name, count: found.length }).toEqual({ name, count: 1 });
    return found[0];
  };
  const httpSpan = byName("POST /graphql");
  const create = byName("completion.create");
  const enqueue = byName("completion.enqueue");
  const queueWait = byName("completion.queue_wait");
  for (const s of [httpSpan, create, enqueue]) expect(s.service).toBe("api-under-test");
  for (const s of [queueWait, processSpan!]) expect(s.service).toBe("worker-under-test");
  for (const name of ["completion.dispatch", "completion.prefill", "completion.decode", "completion.stream_end"]) {
    const s = byName(name);
    expect(s.service).toBe("worker-under-test");
    expect(s.parentSpanId).toBe(processSpan!.spanId);
  }
  expect(create.parentSpanId).toBe(httpSpan.spanId);
  expect(enqueue.parentSpanId).toBe(create.spanId);
  expect(processSpan!.parentSpanId).toBe(enqueue.spanId);
  expect(queueWait.parentSpanId).toBe(enqueue.spanId);
  expect(JSON.stringify(trace)).not.toContain("qx9");
  expect(paths.every((p) => p.startsWith("POST /v1/traces application/json"))).toBe(true);
}, 90_000);
