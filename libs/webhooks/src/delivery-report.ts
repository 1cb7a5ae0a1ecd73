/**
 * What the delivery processor reports after every run of a delivery job, for metrics. The API
 * passes its Prometheus metrics (libs/metrics `webhookDelivery`); this library knows nothing of
 * Prometheus.
 */
import type { DeliveryAttempt } from './records.ts';

/**
 * How a run of a delivery job ended: `delivered` (2xx), `retrying` (failed; BullMQ tries again
 * after its backoff), `failed` (given up: last attempt, refused target, bad job), `skipped`
 * (subscription deleted or disabled, or the event already delivered).
 */
export type DeliveryJobOutcome = 'delivered' | 'retrying' | 'failed' | 'skipped';

/**
 * Why an attempt did not get a 2xx: the receiver's answer (`http_4xx`, `http_5xx`, `http_other`
 * for 1xx/3xx: redirects are not followed), no answer in time (`timeout`), no connection
 * (`network`: DNS, refused, reset, TLS), a target the SSRF guard refused (`refused`), or the
 * farm's own fault (`farm`: Redis away while reading the subscription or logging, a bad job).
 */
export type DeliveryFailureReason = 'http_4xx' | 'http_5xx' | 'http_other' | 'timeout' | 'network' | 'refused' | 'farm';

export interface DeliveryReport {
  project: string;
  outcome: DeliveryJobOutcome;
  /** Set for `retrying` and `failed`. */
  reason?: DeliveryFailureReason;
  /**
   * Seconds from the event's publication (`createdAt`) to the receiver's 2xx, retries included;
   * set for `delivered`, except for redeliveries a user asked for (their events may be days old).
   */
  latencySeconds?: number;
}

export interface DeliveryObserver {
  record: (report: DeliveryReport) => void;
}

/** What `post` rejects with when the receiver does not answer within the timeout. */
export const noAnswerMessage = (timeoutMs: number): string => `no answer within ${timeoutMs} ms`;
const TIMED_OUT = /^no answer within \d+ ms$|ETIMEDOUT/;

/** Why a failed attempt failed, from its log entry. */
export function failureReason(a: Pick<DeliveryAttempt, 'status' | 'error' | 'refused'>): DeliveryFailureReason {
  if (a.refused) return 'refused';
  if (a.status !== undefined) return a.status >= 500 && a.status < 600 ? 'http_5xx' : a.status >= 400 && a.status < 500 ? 'http_4xx' : 'http_other';
  return a.error && TIMED_OUT.test(a.error) ? 'timeout' : 'network';
}
