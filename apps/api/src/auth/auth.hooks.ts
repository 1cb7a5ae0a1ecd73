/**
 * The API's front door, as Fastify hooks so that it covers every route (Nest controllers, raw
 * Fastify routes, 404s) before any body is read:
 *
 * - `onRequest`: everything under /v1 except `POST`/`DELETE /v1/session` needs a key (401); a
 *   write made with the session cookie must come from a page of the API's own origin (403
 *   CSRF_REJECTED, see ./origin.ts); then the request takes a token from the key's bucket (429
 *   with Retry-After), unless its route is declared `@RouteConfig(UNMETERED)` (reads of a shot's
 *   images, which stand in for object-store reads). Public: /healthz, /readyz, /metrics, /docs…,
 *   and everything outside /v1 (the dashboard's files).
 * - `onSend`: appends every mutating /v1 call made with an identified key (refusals included)
 *   to its project's audit log, before the answer leaves, so a client reads its own writes.
 *
 * Scopes are checked later, by ScopeGuard, which knows each route's declaration.
 */
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '@celfarm/config';
import type { AuditLog, RateLimiter } from '@celfarm/tenancy';
import type { ErrorBody } from '../core/api-error.ts';
import { CLOCK, CONFIG } from '../core/tokens.ts';
import { Authenticator } from './authenticator.ts';
import { SESSION_COOKIE, readCookie } from './cookie.ts';
import { OriginPolicy } from './origin.ts';
import { identifiedKeyOf, maybePrincipalOf, noteIdentified, setPrincipal } from './principal.ts';
import { AUDIT_LOG, RATE_LIMITER } from './tokens.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Route config (`@RouteConfig(UNMETERED)`) of routes that take no token from the key's bucket:
 * a shot page loads two images per frame, and the flipbook every output at once.
 */
export const UNMETERED = { celfarmUnmetered: true } as const;

const unmetered = (req: FastifyRequest): boolean => (req.routeOptions.config as { celfarmUnmetered?: boolean } | undefined)?.celfarmUnmetered === true;

const pathOf = (req: FastifyRequest): string => {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
};

const underV1 = (p: string): boolean => p === '/v1' || p.startsWith('/v1/');

/** Whether a request is about the API (by route pattern or, for unmatched requests, by path). */
export function isApiRequest(req: FastifyRequest): boolean {
  return underV1(req.routeOptions.url ?? '') || underV1(pathOf(req));
}

/** Whether a request needs credentials: the API, less signing in and out. */
export function needsAuth(req: FastifyRequest): boolean {
  if (!isApiRequest(req)) return false;
  return !(req.routeOptions.url === '/v1/session' && (req.method === 'POST' || req.method === 'DELETE'));
}

const error = (code: string, message: string): ErrorBody => ({ error: { code, message } });

@Injectable()
export class AuthHooks implements OnModuleInit {
  private readonly logger = new Logger('auth');
  private readonly origins: OriginPolicy;

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(RATE_LIMITER) private readonly limiter: RateLimiter,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: () => Date,
  ) {
    this.origins = new OriginPolicy(config);
  }

  /** Runs before Fastify is ready, so the hooks apply to every route, whenever it was declared. */
  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', (req, reply) => this.onRequest(req, reply));
    fastify.addHook('onSend', async (req, reply, payload) => {
      await this.record(req, reply, payload);
      return payload;
    });
  }

  private async onRequest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const csrf = this.crossSiteRefusal(req);
    if (!needsAuth(req)) {
      if (csrf) await reply.code(403).send(csrf);
      return;
    }
    try {
      const outcome = await this.auth.authenticate(req.headers);
      if (!outcome.ok) {
        if (outcome.key) noteIdentified(req, outcome.key);
        await reply.code(401).send(error('UNAUTHENTICATED', outcome.message));
        return;
      }
      noteIdentified(req, outcome.key);
      setPrincipal(req, outcome.principal);
      // After authenticating, so that the refusal lands in the key's audit log.
      if (csrf) {
        await reply.code(403).send(csrf);
        return;
      }
      if (unmetered(req)) return;
      const rate = outcome.key.rateLimit ?? this.config.RATE_LIMIT_PER_SECOND;
      const taken = await this.limiter.take(outcome.key.id, { rate, burst: this.config.RATE_LIMIT_BURST });
      if (!taken.allowed) {
        const seconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
        await reply
          .code(429)
          .header('retry-after', String(seconds))
          .send(error('RATE_LIMITED', `API key ${outcome.key.id} is over its rate limit of ${rate} requests/s; retry in ${seconds} s`));
      }
    } catch (e) {
      // Redis away: refuse rather than let the request through unchecked.
      this.logger.warn(`checking credentials: ${(e as Error).message}`);
      await reply.code(503).send(error('UNAVAILABLE', 'cannot check credentials right now; retry shortly'));
    }
  }

  /**
   * The CSRF rule (./origin.ts): the refusal of a write that rides the session cookie from a page
   * of another origin, or that names a foreign page while signing in; null when it may go on.
   */
  private crossSiteRefusal(req: FastifyRequest): ErrorBody | null {
    if (!MUTATING.has(req.method) || !isApiRequest(req) || req.headers.authorization !== undefined) return null;
    const verdict = this.origins.verdict(req.headers);
    if (verdict.kind === 'same') return null;
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE) !== undefined;
    if (verdict.kind === 'absent' && !cookie) return null;
    const message =
      verdict.kind === 'foreign'
        ? `${req.method} from a page of ${verdict.origin} refused: session writes must come from this API's own origin`
        : `${req.method} with the session cookie needs an Origin (or Referer) header of this API's own origin; scripts and tools send Authorization: Bearer <API key> instead`;
    return { error: { code: 'CSRF_REJECTED', field: 'origin', message } };
  }

  private async record(req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
    if (!MUTATING.has(req.method) || !isApiRequest(req)) return;
    const key = identifiedKeyOf(req);
    const principal = maybePrincipalOf(req);
    const keyId = principal?.keyId ?? key?.id;
    const project = principal?.project ?? key?.project;
    if (!keyId || !project) return;
    const status = reply.statusCode;
    const target = targetOf(req, status, payload);
    try {
      await this.audit.append(project, {
        at: this.clock().toISOString(),
        keyId,
        keyName: principal?.name ?? key?.name ?? '',
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        path: pathOf(req),
        status,
        ...(target ? { target } : {}),
      });
    } catch (e) {
      // The call itself has happened; a lost audit line must not turn it into an error.
      this.logger.error(`audit log of ${req.method} ${pathOf(req)} by ${keyId}: ${(e as Error).message}`);
    }
  }
}

/** The `:id` of the route, else the `id` of what a successful call created. */
function targetOf(req: FastifyRequest, status: number, payload: unknown): string | undefined {
  const params = req.params as Record<string, unknown> | undefined;
  if (typeof params?.id === 'string' && params.id) return params.id;
  if (status >= 200 && status < 300 && typeof payload === 'string' && payload.startsWith('{')) {
    try {
      const id = (JSON.parse(payload) as { id?: unknown }).id;
      if (typeof id === 'string') return id;
    } catch {
      // not JSON after all: no target
    }
  }
  return undefined;
}
