/**
 * /v1/session: the dashboard signs in with an API key and then uses the `celfarm_session`
 * cookie (HttpOnly, SameSite=Strict) instead of holding the key in script-readable storage.
 */
import { Body, Controller, Delete, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ZodValidationPipe } from 'nestjs-zod';
import type { Config } from '@celfarm/config';
import { signInSchema, type SignIn, type WhoAmI } from '@celfarm/contract';
import type { KeyStore, SessionStore } from '@celfarm/tenancy';
import { ErrorDto } from '../core/api-error.ts';
import { CONFIG } from '../core/tokens.ts';
import { Authenticator } from './authenticator.ts';
import { SignInDto, WhoAmIDto } from './auth.dto.ts';
import { clearedSessionCookie, sessionCookie } from './cookie.ts';
import { Authenticated, CurrentPrincipal, noteIdentified, unauthenticated, type Principal } from './principal.ts';
import { KEY_STORE, SESSION_STORE } from './tokens.ts';

@ApiTags('auth')
@Controller('v1/session')
export class SessionController {
  constructor(
    @Inject(KEY_STORE) private readonly keys: KeyStore,
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  @Post()
  @HttpCode(204)
  @ApiOperation({ summary: 'Sign in with an API key: sets the celfarm_session cookie (HttpOnly, SameSite=Strict)', security: [] })
  @ApiBody({ type: SignInDto })
  @ApiResponse({ status: 204, description: 'Signed in; `Set-Cookie: celfarm_session=…`' })
  @ApiResponse({ status: 400, description: 'No key in the body', type: ErrorDto })
  @ApiResponse({ status: 401, description: 'Unknown or revoked key', type: ErrorDto })
  @ApiResponse({ status: 403, description: 'Sent from a page of another origin (`CSRF_REJECTED`)', type: ErrorDto })
  async signIn(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodValidationPipe(signInSchema)) body: SignIn,
  ): Promise<void> {
    const key = await this.keys.identify(body.key);
    if (key) noteIdentified(req, key);
    if (!key) throw unauthenticated('invalid API key');
    if (key.revokedAt) throw unauthenticated(`API key ${key.id} was revoked`);
    const sid = await this.sessions.create(key.id, this.config.SESSION_TTL_SECONDS);
    void reply
      .header('set-cookie', sessionCookie(sid, this.config.SESSION_TTL_SECONDS, this.config.SESSION_COOKIE_SECURE))
      .header('cache-control', 'no-store');
  }

  @Get()
  @Authenticated()
  @ApiOperation({ summary: 'Who is calling: the project, key and scopes of this session or token' })
  @ApiResponse({ status: 200, type: WhoAmIDto })
  @ApiResponse({ status: 401, type: ErrorDto })
  whoAmI(@CurrentPrincipal() p: Principal): WhoAmI {
    return { project: p.project, keyId: p.keyId, name: p.name, scopes: [...p.scopes] };
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Sign out: ends the session and clears the cookie (204 even without one)', security: [] })
  @ApiResponse({ status: 204 })
  @ApiResponse({ status: 403, description: 'Sent from a page of another origin (`CSRF_REJECTED`)', type: ErrorDto })
  async signOut(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const session = await this.auth.sessionKey(req.headers.cookie);
    if (session) {
      if (session.key) noteIdentified(req, session.key);
      await this.sessions.delete(session.sid);
    }
    void reply.header('set-cookie', clearedSessionCookie(this.config.SESSION_COOKIE_SECURE)).header('cache-control', 'no-store');
  }
}
