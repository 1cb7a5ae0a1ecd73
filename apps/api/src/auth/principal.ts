/**
 * Who is calling: the API key behind a request, resolved from `Authorization: Bearer cf_…` or the
 * `celfarm_session` cookie by the auth hook before any handler runs. Other modules read it with
 * `principalOf(req)` (or the `@CurrentPrincipal()` parameter) and declare what a route needs with
 * `@RequireScope('admin')`. Routes without a declaration need `read` for GET and `submit`
 * otherwise, except under /v1/keys, /v1/audit and /v1/webhooks, which need `admin`.
 *
 * ```ts
 * @Get(':id') @RequireScope('read')
 * view(@CurrentPrincipal() p: Principal, @Param('id') id: string) { return this.svc.view(id, p.project); }
 * ```
 */
import type { IncomingMessage } from 'node:http';
import { SetMetadata, createParamDecorator, type CustomDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { ApiKey, Scope } from '@celfarm/tenancy';
import { ApiError } from '../core/api-error.ts';

export interface Principal {
  keyId: string;
  /** The key's project: the only project this request may see or change. */
  project: string;
  /** The key's name (for logs and the audit trail). */
  name: string;
  scopes: readonly Scope[];
  /** How the request authenticated: a bearer token, or a dashboard session cookie. */
  via: 'token' | 'session';
}

/** Either side of a request: Fastify's wrapper or the Node request under it. */
export type AnyRequest = FastifyRequest | IncomingMessage;

// Keyed by the Node request, so Fastify hooks, Nest guards and raw handlers all find the same entry.
const principals = new WeakMap<IncomingMessage, Principal>();
const identified = new WeakMap<IncomingMessage, ApiKey>();
const nodeRequest = (req: AnyRequest): IncomingMessage => ('raw' in req ? req.raw : req);

/** The authenticated principal; throws 401 when the request has none (a public route). */
export function principalOf(req: AnyRequest): Principal {
  const p = principals.get(nodeRequest(req));
  if (!p) throw unauthenticated('this route needs an API key');
  return p;
}

/** The principal, or undefined on public routes. */
export function maybePrincipalOf(req: AnyRequest): Principal | undefined {
  return principals.get(nodeRequest(req));
}

/** Auth internals: records the principal of a request. */
export function setPrincipal(req: AnyRequest, p: Principal): void {
  principals.set(nodeRequest(req), p);
}

/** Auth internals: the key a request named, even when it was refused (for the audit log). */
export function noteIdentified(req: AnyRequest, key: ApiKey): void {
  identified.set(nodeRequest(req), key);
}

export function identifiedKeyOf(req: AnyRequest): ApiKey | undefined {
  return identified.get(nodeRequest(req));
}

export function principalFromKey(key: ApiKey, via: Principal['via']): Principal {
  return { keyId: key.id, project: key.project, name: key.name, scopes: key.scopes, via };
}

export const SCOPES_METADATA = 'celfarm:scopes';

/** The route (or every route of a controller) needs all of `scopes`. */
export const RequireScope = (...scopes: Scope[]): CustomDecorator<string> => SetMetadata(SCOPES_METADATA, scopes);

/** The route needs a valid key or session, whatever its scopes (e.g. GET /v1/session). */
export const Authenticated = (): CustomDecorator<string> => SetMetadata(SCOPES_METADATA, []);

/** Handler parameter: the request's principal (401 when there is none). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => principalOf(ctx.switchToHttp().getRequest<FastifyRequest>()));

/** For handlers that are not Nest routes: throws 403 unless the principal has `scope`. */
export function requireScope(p: Principal, scope: Scope): void {
  if (!p.scopes.includes(scope)) throw forbidden(`needs scope ${scope}`);
}

export const unauthenticated = (message: string): ApiError => new ApiError(401, 'UNAUTHENTICATED', message);

export const forbidden = (message: string, field?: string): ApiError => new ApiError(403, 'FORBIDDEN', message, field);

/** The scope a route needs when it declares none (`path` is the route pattern when known). */
export function defaultScope(method: string, path: string): Scope {
  if (/^\/v1\/(keys|audit|webhooks)(\/|$)/.test(path)) return 'admin';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'submit';
}
