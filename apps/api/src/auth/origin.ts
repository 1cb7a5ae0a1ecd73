/**
 * The CSRF rule for the session cookie. A browser attaches `celfarm_session` to any request
 * for our host that a page makes — including a page of another site, or of another port on the
 * same host (a different origin, but the same site, so SameSite=Strict does not stop it). Every
 * browser names the page's origin in `Origin` on a POST/PUT/PATCH/DELETE, so:
 *
 * - a write authenticated by the cookie must carry `Origin` (or, failing that, `Referer`) whose
 *   origin is the API's own: the `Host` the request came to, PUBLIC_URL, or one of ALLOWED_ORIGINS;
 * - a write without credentials (signing in) is refused only when it names a foreign origin;
 * - a write with `Authorization: Bearer …` (CLI, Python client, pipelines) is not checked: a page
 *   of another origin cannot set that header without a CORS preflight, which this API never grants.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '@celfarm/config';

export type OriginVerdict =
  | { kind: 'same'; origin: string }
  | { kind: 'foreign'; origin: string }
  /** Neither Origin nor a readable Referer: a client that is not a browser page. */
  | { kind: 'absent' };

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

const originOf = (url: string): string | undefined => {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
};

export class OriginPolicy {
  /** Origins accepted whatever the Host: PUBLIC_URL's and ALLOWED_ORIGINS. */
  private readonly configured: ReadonlySet<string>;

  constructor(config: Pick<Config, 'PUBLIC_URL' | 'ALLOWED_ORIGINS'>) {
    const origins = [config.PUBLIC_URL, ...config.ALLOWED_ORIGINS].flatMap((u) => (u ? [originOf(u)] : []));
    this.configured = new Set(origins.filter((o): o is string => o !== undefined));
  }

  /** Where the request's page came from, and whether that is the API itself. */
  verdict(headers: IncomingHttpHeaders): OriginVerdict {
    const origin = header(headers, 'origin');
    // `Origin: null` (sandboxed frames, privacy-redirected requests) names no page we can trust.
    const claimed = origin !== undefined ? (originOf(origin) ?? origin) : fromReferer(header(headers, 'referer'));
    if (claimed === undefined) return { kind: 'absent' };
    return { kind: this.isOwn(claimed, header(headers, 'host')) ? 'same' : 'foreign', origin: claimed };
  }

  private isOwn(origin: string, host: string | undefined): boolean {
    if (originOf(origin) !== origin) return false;
    if (this.configured.has(origin)) return true;
    if (!host) return false;
    // Host and port as the browser addressed us; the scheme may differ behind a TLS proxy.
    const own = originOf(`http://${host}`);
    return own !== undefined && new URL(own).host === new URL(origin).host;
  }
}

function fromReferer(referer: string | undefined): string | undefined {
  return referer ? originOf(referer) : undefined;
}
