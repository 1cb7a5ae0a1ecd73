/**
 * How the S3 adapter retries, and how callers tell "the store is unreachable" from any other
 * failure. The SDK's standard strategy draws every retry from one retry quota shared by the
 * whole client (500 tokens, 5–10 per retry): under an outage a handful of calls drain it and
 * every later call fails at its first error. {@link CappedBackoffRetry} has no such budget: each
 * call gets its own attempts, spaced by capped exponential backoff with jitter.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** The SDK's retry-strategy interface (RetryStrategyV2 of @smithy/types), taken from the client's own config type. */
type RetryStrategyV2 = Extract<NonNullable<S3ClientConfig['retryStrategy']>, { acquireInitialRetryToken: unknown }>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2['acquireInitialRetryToken']>>;
type RetryErrorInfo = Parameters<RetryStrategyV2['refreshRetryTokenForRetry']>[1];

export interface RetryPolicy {
  /** Attempts per call, the first included (S3_MAX_ATTEMPTS; default 8). */
  maxAttempts: number;
  /** Backoff before the first retry, doubled per retry (default 100 ms). */
  baseDelayMs: number;
  /** Largest backoff between two attempts (S3_RETRY_MAX_DELAY_MS; default 5 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 5000 };

/**
 * Backoff before retry `retry` (1-based): "equal jitter" over min(max, base · 2^(retry−1)) — at
 * least half the step, so retries stay spaced, and a random rest, so many clients that failed
 * together do not come back in lockstep.
 */
export function backoffDelay(retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

class Token implements RetryToken {
  constructor(
    private readonly count: number,
    private readonly delay: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

/**
 * A RetryStrategyV2 for the S3 client: retries throttling, transient (connection refused or
 * reset, timeouts, 500/502/503/504) and other 5xx errors up to `maxAttempts` per call, never 4xx;
 * no state is shared between calls, so no number of failing calls can use up another call's
 * retries. The SDK's retry middleware sleeps the token's delay before the next attempt.
 */
export class CappedBackoffRetry implements RetryStrategyV2 {
  readonly mode = 'celfarm-capped-backoff';

  constructor(
    readonly policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    private readonly random: () => number = Math.random,
  ) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(new Token(0, 0));
  }

  refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const retry = token.getRetryCount() + 1;
    if (info.errorType === 'CLIENT_ERROR' || retry >= this.policy.maxAttempts) {
      // The middleware rethrows the operation's own error when this rejects.
      return Promise.reject(new Error('no retry left'));
    }
    let delay = backoffDelay(retry, this.policy, this.random);
    const hint = info.retryAfterHint;
    if (hint instanceof Date) delay = Math.min(this.policy.maxDelayMs, Math.max(delay, hint.getTime() - Date.now()));
    return Promise.resolve(new Token(retry, delay));
  }

  recordSuccess(): void {
    // Nothing to refund: there is no shared budget.
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

/**
 * True when `e` (as the SDK throws it, after its retries) says the store could not be reached or
 * could not serve: a network error, a timeout, throttling, or a 5xx. False for answers about the
 * request itself (404, 403, a bad request): waiting would not change those.
 */
export function isUnreachable(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== 'object' || depth > 5) return false;
  const err = e as { name?: string; code?: string; message?: string; cause?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429;
  if (err.code && NETWORK_CODES.has(err.code)) return true;
  if (err.name && TIMEOUT_NAMES.has(err.name)) return true;
  if (err.message === 'socket hang up') return true;
  return isUnreachable(err.cause, depth + 1);
}

/**
 * The object store could not be reached (after the adapter's own retries): nothing is wrong with
 * the request, so callers should wait and try again rather than fail the work.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}
