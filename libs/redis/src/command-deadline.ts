import type { Redis } from "ioredis";

/**
 * A bound on how long a request waits for Redis. ioredis alone does not give one: while
 * it reconnects, a command waits in its offline queue until `maxRetriesPerRequest`
 * reconnect attempts failed (never, on a BullMQ connection, where it must be null), and a
 * command in flight when the socket dropped waits for the next connection to be resent. So a
 * request could wait as long as the outage and then succeed, or wait seconds and fail.
 *
 * With `applyCommandDeadline(redis, ms)`, every command this client sends (pipelines and
 * scripts included) is rejected with RedisCommandTimeoutError if it has no answer `ms` after
 * it was issued, wherever it waits; and a command rejected so is never sent later (ioredis
 * would send it from its offline queue, or resend it, once the connection is back): its
 * caller has already been told it failed, so it must not take effect behind the caller's
 * back. A command already written to the socket may still have run (the answer was lost):
 * callers treat the timeout as "outcome unknown" and make their writes idempotent or undo
 * them, as for any lost connection.
 *
 * Blocking commands (BLPOP…, XREAD/XREADGROUP with BLOCK) are left alone: they wait by
 * design. So is INFO, a connection probe no request makes: BullMQ's one-time version check
 * sends it, and a connection whose check failed is never initialised again. The deadline is per client instance: `duplicate()` copies options, not this, so
 * the blocking readers and subscribers duplicated from a client keep waiting as before.
 */
export class RedisCommandTimeoutError extends Error {
  override readonly name = "RedisCommandTimeoutError";
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`Redis did not answer ${command} within ${timeoutMs} ms (Redis unreachable or too slow)`);
  }
}

/** The part of ioredis' Command the deadline uses. */
interface CommandLike {
  name: string;
  args: unknown[];
  promise: Promise<unknown>;
  reject(error: Error): void;
}
type SendCommand = (command: CommandLike, ...rest: unknown[]) => unknown;

const BLOCKING = new Set([
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "wait",
]);

function isExempt(command: CommandLike): boolean {
  const name = command.name.toLowerCase();
  if (BLOCKING.has(name) || name === "info") return true;
  if (name !== "xread" && name !== "xreadgroup") return false;
  return command.args.some((a) => typeof a === "string" && a.toUpperCase() === "BLOCK");
}

/** Re-arms after late timers: under a stalled process a deadline stretches to at most (1 + this) × the bound. */
const MAX_STALL_REARMS = 4;

/**
 * Calls `expire` once the command has waited `timeoutMs` without an answer. Timers run before
 * I/O in Node's loop, so the check is deferred to after the I/O phase: an answer already
 * received settles the command first. A timer that fired more than half the bound late
 * measured the process's own stall (CPU starved, a long synchronous task), not Redis: the
 * command gets the bound again, a few times at most.
 */
function armDeadline(command: CommandLike, timeoutMs: number, expire: () => void): void {
  let settled = false;
  let rearms = 0;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const dueMs = Date.now() + timeoutMs;
    timer = setTimeout(() => {
      const lateMs = Date.now() - dueMs;
      setImmediate(() => {
        if (settled) return;
        if (lateMs > timeoutMs / 2 && rearms < MAX_STALL_REARMS) {
          rearms += 1;
          arm();
        } else expire();
      });
    }, timeoutMs);
  };
  arm();
  const done = () => {
    settled = true;
    clearTimeout(timer);
  };
  command.promise.then(done, done);
}

/** Arms the deadline on `redis` (once; a second call is a no-op). Returns the client. */
export function applyCommandDeadline<R extends Redis>(redis: R, timeoutMs: number): R {
  if (!(timeoutMs > 0)) throw new Error(`the Redis command deadline must be positive, got ${timeoutMs}`);
  const client = redis as unknown as { sendCommand: SendCommand; __liteDeadlineMs?: number };
  if (client.__liteDeadlineMs !== undefined) return redis;
  client.__liteDeadlineMs = timeoutMs;
  const send = client.sendCommand.bind(redis) as SendCommand;
  const armed = new WeakSet<CommandLike>();
  const expired = new WeakSet<CommandLike>();
  client.sendCommand = (command, ...rest) => {
    // Rejected by its deadline while queued: its caller has its answer; never send it late.
    if (expired.has(command)) return command.promise;
    if (!armed.has(command) && !isExempt(command)) {
      armed.add(command);
      armDeadline(command, timeoutMs, () => {
        expired.add(command);
        command.reject(new RedisCommandTimeoutError(command.name, timeoutMs));
      });
    }
    return send(command, ...rest);
  };
  return redis;
}
