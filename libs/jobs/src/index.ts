export * from './catalogue.ts';
export * from './records.ts';
export * from './store.ts';
export * from './queues.ts';
export * from './events.ts';
export * from './fate.ts';
export * from './outcome.ts';
export * from './identity.ts';
