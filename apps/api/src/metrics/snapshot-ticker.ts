/**
 * The async iterator of a polling subscription: `read()` at once, then every `intervalMs`
 * after the previous answer, until the client stops (graphql-ws calls `return`), which also
 * cancels a pending wait at once and runs `onEnd` exactly once. A failed read ends the
 * subscription with its error.
 */
export function snapshotTicker<T>(
  intervalMs: number,
  read: () => Promise<T>,
  onEnd: () => void,
): AsyncIterableIterator<T> {
  let first = true;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    if (timer) clearTimeout(timer);
    wake?.();
    onEnd();
  };
  const done = (): IteratorResult<T> => ({ value: undefined, done: true });
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (ended) return done();
      if (!first) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          // unref: a subscription left waiting never holds the process open at shutdown
          timer = setTimeout(resolve, intervalMs).unref();
        });
        wake = undefined;
        if (ended) return done();
      }
      first = false;
      try {
        return { value: await read(), done: false };
      } catch (e) {
        end();
        throw e;
      }
    },
    async return() {
      end();
      return done();
    },
    async throw(e?: unknown) {
      end();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
