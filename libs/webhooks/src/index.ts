export * from './signing.ts';
export * from './targets.ts';
export * from './subscriptions.ts';
export * from './events.ts';
export * from './delivery-log.ts';
export * from './fanout.ts';
export * from './dispatcher.ts';
export * from './delivery.ts';
