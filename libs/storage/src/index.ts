export * from './keys.ts';
export * from './store.ts';
export * from './retry.ts';
export * from './waiting-store.ts';
