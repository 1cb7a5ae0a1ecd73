/**
 * Authentication, scopes, tenancy plumbing, rate limits and the audit log. Global: other modules
 * inject KEY_STORE (projects, e.g. their webhook allow-list) and AUDIT_LOG, and read the caller
 * with `principalOf(req)` / `@CurrentPrincipal()` from ./principal.ts.
 */
import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { Config } from '@celfarm/config';
import type { RedisClient } from '@celfarm/jobs';
import { AuditLog, KeyStore, RateLimiter, SessionStore } from '@celfarm/tenancy';
import { CLOCK, CONFIG, REDIS } from '../core/tokens.ts';
import { AuditController } from './audit.controller.ts';
import { AuthHooks } from './auth.hooks.ts';
import { Authenticator } from './authenticator.ts';
import { KeysController } from './keys.controller.ts';
import { ScopeGuard } from './scope.guard.ts';
import { SessionController } from './session.controller.ts';
import { AUDIT_LOG, KEY_STORE, RATE_LIMITER, SESSION_STORE } from './tokens.ts';

@Global()
@Module({
  controllers: [SessionController, KeysController, AuditController],
  providers: [
    {
      provide: KEY_STORE,
      inject: [REDIS, CONFIG, CLOCK],
      useFactory: (redis: RedisClient, config: Config, clock: () => Date) => new KeyStore(redis, config.REDIS_PREFIX, clock),
    },
    {
      provide: SESSION_STORE,
      inject: [REDIS, CONFIG, CLOCK],
      useFactory: (redis: RedisClient, config: Config, clock: () => Date) => new SessionStore(redis, config.REDIS_PREFIX, clock),
    },
    { provide: RATE_LIMITER, inject: [REDIS, CONFIG], useFactory: (redis: RedisClient, config: Config) => new RateLimiter(redis, config.REDIS_PREFIX) },
    { provide: AUDIT_LOG, inject: [REDIS, CONFIG], useFactory: (redis: RedisClient, config: Config) => new AuditLog(redis, config.REDIS_PREFIX) },
    Authenticator,
    AuthHooks,
    { provide: APP_GUARD, useClass: ScopeGuard },
  ],
  exports: [KEY_STORE, AUDIT_LOG, Authenticator],
})
export class AuthModule {}
