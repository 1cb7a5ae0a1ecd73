/**
 * What an API key may do. Imports nothing, so the wire contract re-exports it for the browser as
 * `@celfarm/tenancy/scopes`; the keys that carry scopes (Redis, node:crypto) are keys.ts.
 */

/** Submit (and cancel, retry, delete) shots, read them, administer the project. */
export const SCOPES = ['submit', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
