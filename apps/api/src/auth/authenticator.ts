/**
 * Resolves a request's credentials to a principal: `Authorization: Bearer <token>` first, else
 * the session cookie. Looks the key up on every call, so a revoked key (and every session opened
 * with it) is refused on its next request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import type { ApiKey, KeyStore, SessionStore } from '@celfarm/tenancy';
import { SESSION_COOKIE, readCookie } from './cookie.ts';
import { principalFromKey, type Principal } from './principal.ts';
import { KEY_STORE, SESSION_STORE } from './tokens.ts';

export type AuthOutcome =
  | { ok: true; principal: Principal; key: ApiKey }
  /** `key`: the key the credentials named, when known (a revoked one), for the audit log. */
  | { ok: false; message: string; key?: ApiKey };

@Injectable()
export class Authenticator {
  constructor(
    @Inject(KEY_STORE) private readonly keys: KeyStore,
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
  ) {}

  async authenticate(headers: IncomingHttpHeaders): Promise<AuthOutcome> {
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(authorization);
      if (!m) return { ok: false, message: 'the Authorization header must be `Bearer <API key>`' };
      const key = await this.keys.identify(m[1]!);
      if (!key) return { ok: false, message: 'invalid API key' };
      if (key.revokedAt) return { ok: false, message: `API key ${key.id} was revoked`, key };
      return { ok: true, principal: principalFromKey(key, 'token'), key };
    }
    const sid = readCookie(headers.cookie, SESSION_COOKIE);
    if (sid) {
      const session = await this.sessions.get(sid);
      if (!session) return { ok: false, message: 'the session has expired or was signed out; sign in again (POST /v1/session)' };
      const key = await this.keys.byId(session.keyId);
      if (!key) return { ok: false, message: 'the session has expired or was signed out; sign in again (POST /v1/session)' };
      if (key.revokedAt) return { ok: false, message: `the session's API key ${key.id} was revoked`, key };
      return { ok: true, principal: principalFromKey(key, 'session'), key };
    }
    return { ok: false, message: 'missing credentials: send `Authorization: Bearer <API key>` or sign in (POST /v1/session)' };
  }

  /** The session of a cookie header, for signing out (null when there is none). */
  async sessionKey(cookieHeader: string | undefined): Promise<{ sid: string; key: ApiKey | null } | null> {
    const sid = readCookie(cookieHeader, SESSION_COOKIE);
    if (!sid) return null;
    const session = await this.sessions.get(sid);
    return { sid, key: session ? await this.keys.byId(session.keyId) : null };
  }
}
