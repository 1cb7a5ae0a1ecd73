/**
 * Security headers on every response — dashboard files, /docs, /v1, probes, /metrics, errors and
 * the live event stream — through @fastify/helmet, whose onRequest hook sets them on the raw
 * response before any handler or auth hook answers:
 *
 * - `Content-Security-Policy` fitted to the dashboard's build: scripts, styles and API calls
 *   (server-sent events included) from the API's own origin only; images from it, `data:` (the
 *   favicon) and, when the farm hands out presigned URLs, the object store's origin;
 *   `frame-ancestors 'none'`. /docs (Swagger UI sets inline style attributes) has its own.
 * - `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`
 *   (not `no-referrer`: under it browsers send `Origin: null` on the dashboard's own writes, which
 *   the CSRF check must then refuse), Cross-Origin-Opener/Resource-Policy `same-origin`.
 * - `Strict-Transport-Security` only when PUBLIC_URL is https: a farm on plain http must not
 *   tell browsers to insist on TLS.
 *
 * A handler may still set its own `content-security-policy` (Fastify's headers win over the raw
 * ones at writeHead), as the page that says the dashboard is not built does.
 */
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Config } from '@celfarm/config';

export type CspDirectives = Record<string, string[]>;

/** The policy of the dashboard, and of every response without its own. */
export function dashboardCsp(imageOrigins: readonly string[] = []): CspDirectives {
  return {
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:', ...imageOrigins],
    'connect-src': ["'self'"],
    'font-src': ["'self'"],
    'object-src': ["'none'"],
    'base-uri': ["'none'"],
    'form-action': ["'self'"],
    'frame-ancestors': ["'none'"],
  };
}

/** /docs: Swagger UI renders with inline style attributes and `data:` icons; scripts stay 'self'. */
export const DOCS_CSP: CspDirectives = { ...dashboardCsp(), 'style-src': ["'self'", "'unsafe-inline'"] };

/** Route config (`@RouteConfig(...)`) that gives one route its own policy. */
export const cspRouteConfig = (directives: CspDirectives): { helmet: FastifyHelmetOptions } => ({
  helmet: { contentSecurityPolicy: { useDefaults: false, directives } },
});

/** Whether browsers reach the API over TLS (PUBLIC_URL is https). */
export const behindTls = (config: Pick<Config, 'PUBLIC_URL'>): boolean => config.PUBLIC_URL?.toLowerCase().startsWith('https:') ?? false;

export function securityHeaderOptions(config: Pick<Config, 'PUBLIC_URL'>, imageOrigins: readonly string[]): FastifyHelmetOptions {
  return {
    contentSecurityPolicy: { useDefaults: false, directives: dashboardCsp(imageOrigins) },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    // One year; not includeSubDomains: other hosts of the studio's domain are not ours to decide.
    strictTransportSecurity: behindTls(config) ? { maxAge: 31_536_000, includeSubDomains: false } : false,
  };
}

/** Registers the headers; call first, so that they are set before any other hook can answer. */
export async function installSecurityHeaders(app: NestFastifyApplication, config: Config, imageOrigins: readonly string[]): Promise<void> {
  await app.register(helmet, securityHeaderOptions(config, imageOrigins));
}
