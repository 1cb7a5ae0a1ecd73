/**
 * Whether clients get presigned object-store URLs for a shot's images, or paths on this API that
 * stream them to authenticated callers (S3_PRESIGN). The embedded s3rver — the demo's and the
 * tests' store — checks no signatures, so a presigned URL of it with another path in it reads
 * (or writes) any object; there the API itself is the only guard. `auto` takes a loopback
 * S3_ENDPOINT for such a store: one only this host can reach, whose URLs would be of no use to
 * clients elsewhere anyway.
 */
import { isIP } from 'node:net';
import type { Config } from '@celfarm/config';

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  // IPv4-mapped loopback, as written or as URL normalises it (`::ffff:7f00:1`).
  return h === '::1' || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(h);
}

export function presignsObjectUrls(config: Pick<Config, 'S3_PRESIGN' | 'S3_ENDPOINT'>): boolean {
  if (config.S3_PRESIGN !== 'auto') return config.S3_PRESIGN === 'always';
  // Unset: AWS itself.
  return config.S3_ENDPOINT === undefined || !isLoopbackHost(new URL(config.S3_ENDPOINT).hostname);
}
