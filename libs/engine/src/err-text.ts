/** An error as one log field: `Name: message` (no stack; the logs stay one line per event). */
export function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
