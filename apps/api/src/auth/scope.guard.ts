/**
 * Global guard: a route's declared scopes (`@RequireScope`), or the default for its method and
 * path, must all be held by the request's key (403 `needs scope <s>`). Public routes (no
 * principal, no declaration) pass. A route outside /v1 that declares scopes is authenticated
 * here, since the auth hook leaves such paths alone.
 */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Scope } from '@celfarm/tenancy';
import { Authenticator } from './authenticator.ts';
import { SCOPES_METADATA, defaultScope, forbidden, maybePrincipalOf, setPrincipal, unauthenticated } from './principal.ts';

@Injectable()
export class ScopeGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(Authenticator) private readonly auth: Authenticator,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    const declared = this.reflector.getAllAndOverride<Scope[] | undefined>(SCOPES_METADATA, [ctx.getHandler(), ctx.getClass()]);
    let principal = maybePrincipalOf(req);
    if (!principal) {
      if (declared === undefined) return true;
      const outcome = await this.auth.authenticate(req.headers);
      if (!outcome.ok) throw unauthenticated(outcome.message);
      principal = outcome.principal;
      setPrincipal(req, principal);
    }
    const needed = declared ?? [defaultScope(req.method, req.routeOptions.url ?? req.url)];
    const missing = needed.find((s) => !principal.scopes.includes(s));
    if (missing) throw forbidden(`needs scope ${missing}`);
    return true;
  }
}
