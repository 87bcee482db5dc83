/**
 * Node (V8) flags every worker process starts with: `npm start`, `npm run start:worker`, the
 * test and bench harness (libs/testing spawnWorker), docker-compose, and `npm run bench`
 * itself, whose in-process decode loops are the benchmarks' baselines. A worker started
 * without them says so at start (apps/worker main.ts).
 *
 * --initial-old-space-size=256: a worker's live heap is small (~45 MB) but it frees long-lived
 * buffers all the time (each finished sequence's KV cache, a WebAssembly memory of up to MBs;
 * V8 counts those bytes against the old generation), and with V8's default initial limit it
 * ran a full mark-compact every ~0.4 s under the isolation bench's flood (88 in 40 s, each
 * stretching a decode step to 55–80 ms). With 256 MB of room: the decode bench's full GCs
 * 37 → 7, and the isolation flood's light-tenant TTFT after create p99 51–84 ms against
 * 87–108 without (three runs each, 2026-12-03). It costs up to ~200 MB more resident garbage.
 * (V8 reads it when the heap is made: setting it at run time, v8.setFlagsFromString, does
 * nothing, and NODE_OPTIONS does not accept it.)
 */
export const WORKER_NODE_FLAGS: readonly string[] = ["--initial-old-space-size=256"];
