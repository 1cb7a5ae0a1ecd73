/**
 * Webhook signatures per the Standard Webhooks scheme (standardwebhooks.com): the signed content
 * is `${webhook-id}.${webhook-timestamp}.${body}`, the key is the base64-decoded secret without
 * its `whsec_` prefix, and `webhook-signature` carries `v1,<base64 HMAC-SHA256>` (several
 * space-separated signatures are allowed, so a secret can be rotated without a gap).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';

/** The three headers every delivery carries (a type, not an interface: usable as a header record). */
export type SignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
}

/** A new subscription secret: `whsec_` + base64 of 24 random bytes. */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(24).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(raw, 'base64');
  if (key.length === 0) throw new WebhookVerificationError('the secret is empty or not base64');
  return key;
}

function digest(secret: string, id: string, timestamp: number, body: string): Buffer {
  return createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest();
}

/** `v1,<base64 signature>` of one delivery; `timestamp` in unix seconds. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${digest(secret, id, timestamp, body).toString('base64')}`;
}

/** The headers of a delivery of `body` with id `id`, signed at `timestamp` (unix seconds). */
export function signatureHeaders(secret: string, id: string, timestamp: number, body: string): SignatureHeaders {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': sign(secret, id, timestamp, body) };
}

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks a received delivery: the timestamp lies within `toleranceSeconds` of `now` (replays of
 * old deliveries fail) and one of the `v1` signatures matches. Throws WebhookVerificationError
 * saying why; returns the message id and timestamp when it verifies.
 */
export function verify(
  secret: string,
  headers: HeaderSource,
  body: string,
  toleranceSeconds = 300,
  now: () => number = Date.now,
): { id: string; timestamp: number } {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !ts || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d{1,15}$/.test(ts)) throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  const timestamp = Number(ts);
  const skew = Math.floor(now() / 1000) - timestamp;
  if (skew > toleranceSeconds) throw new WebhookVerificationError(`webhook-timestamp is ${skew} s old (tolerance ${toleranceSeconds} s)`);
  if (skew < -toleranceSeconds) throw new WebhookVerificationError(`webhook-timestamp is ${-skew} s in the future (tolerance ${toleranceSeconds} s)`);
  const expected = digest(secret, id, timestamp, body);
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { id, timestamp };
  }
  throw new WebhookVerificationError('no matching v1 signature');
}
