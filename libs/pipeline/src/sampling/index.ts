/** Noise schedule, sigma schedules, samplers, sampling plans and the seeded RNG (model contract §4). */
export * from './schedule.ts';
export * from './sigmas.ts';
export * from './samplers.ts';
export * from './plan.ts';
export * from './rng.ts';
