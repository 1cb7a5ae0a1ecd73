/**
 * Injection tokens of the API's infrastructure. esbuild emits no decorator metadata, so every
 * constructor parameter names its token explicitly with `@Inject(TOKEN)`.
 */
export const CONFIG = Symbol('celfarm.config');
/** Redis (or Cluster) connection for shot records and readiness pings. */
export const REDIS = Symbol('celfarm.redis');
/** Redis (or Cluster) connection shared by the BullMQ queues. */
export const QUEUE_REDIS = Symbol('celfarm.queue-redis');
export const SHOT_STORE = Symbol('celfarm.shot-store');
/** Projects' shot QA thresholds (QaThresholdStore). */
export const QA_THRESHOLD_STORE = Symbol('celfarm.qa-threshold-store');
export const FARM_QUEUES = Symbol('celfarm.farm-queues');
export const OBJECT_STORE = Symbol('celfarm.object-store');
export const METRICS = Symbol('celfarm.metrics');
/** The model pack manifest that submitted settings are validated against. */
export const PACK = Symbol('celfarm.pack');
/** `() => Date`: the clock for record timestamps and shot ids. */
export const CLOCK = Symbol('celfarm.clock');
/** `() => number` in [0, 1): random seeds (−1) and shot id suffixes. */
export const RANDOM = Symbol('celfarm.random');
