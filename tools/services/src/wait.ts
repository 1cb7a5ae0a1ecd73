/**
 * Polls `probe` until it yields a value (anything but undefined, null or false) and returns it;
 * after `timeoutMs` it throws, naming `what` and the last thing the probe returned or threw.
 * For tests, the demo and benches that wait on a real farm (no fixed sleeps).
 */
export interface UntilOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Treat a throwing probe as "not yet" (e.g. a page navigating) instead of failing at once. */
  retryErrors?: boolean;
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 30_000, intervalMs = 20, retryErrors = false }: UntilOptions = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
      last = v;
    } catch (e) {
      if (!retryErrors) throw e;
      last = e instanceof Error ? `error: ${e.message}` : e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
