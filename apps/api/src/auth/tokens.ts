/** Injection tokens of the auth module (exported globally: other modules inject KEY_STORE to read projects). */
export const KEY_STORE = Symbol('celfarm.key-store');
export const SESSION_STORE = Symbol('celfarm.session-store');
export const RATE_LIMITER = Symbol('celfarm.rate-limiter');
export const AUDIT_LOG = Symbol('celfarm.audit-log');
