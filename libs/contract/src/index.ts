/**
 * The wire contract of the celfarm REST API: one zod schema per request and answer, and the
 * types inferred from them. The API validates with these schemas and documents them (OpenAPI);
 * the CLI, the dashboard and the tests type what they send and read by them. Nothing here needs
 * Node: the dashboard bundles it for the browser.
 */
export * from './states.ts';
export * from './errors.ts';
export * from './shots.ts';
export * from './events.ts';
export * from './live.ts';
export * from './webhooks.ts';
export * from './auth.ts';
export * from './operations.ts';
