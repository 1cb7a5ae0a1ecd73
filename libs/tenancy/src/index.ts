export * from './project-id.ts';
export * from './keys.ts';
export * from './sessions.ts';
export * from './rate-limit.ts';
export * from './audit.ts';
