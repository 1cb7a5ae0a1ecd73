/**
 * The farm's Prometheus metrics (prom-client, `celfarm_` prefix). One registry per process;
 * api and worker register what they serve. Names and labels are the contract with dashboards.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const FRAME_STAGES = ['decode', 'mask', 'encode', 'sample', 'decode_vae', 'upload', 'qa'] as const;
export type FrameStage = (typeof FRAME_STAGES)[number];

export interface QueueDepthSource {
  depths(): Promise<Record<string, Record<string, number>>>;
}

export function createMetrics(role: 'api' | 'worker', queues?: QueueDepthSource) {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'celfarm_' });
  // prom-client names three gauges `*_total`, which Prometheus reserves for counters (promtool
  // check metrics refuses them); their non-`_total` twins carry the same values.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`celfarm_${name}`);
  }

  const queueJobs = new Gauge({
    name: 'celfarm_queue_jobs',
    help: 'Jobs per queue and state.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      if (!queues) return;
      try {
        const depths = await queues.depths();
        for (const [queue, states] of Object.entries(depths)) {
          for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
        }
      } catch {
        // Redis unreachable: keep the last values; /readyz reports the outage.
      }
    },
  });

  return {
    registry,
    queueJobs,
    httpDuration: new Histogram({
      name: 'celfarm_http_request_duration_seconds',
      help: 'API request duration by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    frameStage: new Histogram({
      name: 'celfarm_frame_stage_duration_seconds',
      help: 'Frame processing time by stage.',
      labelNames: ['stage'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    samplerStep: new Histogram({
      name: 'celfarm_sampler_step_seconds',
      help: 'Seconds per sampler step.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    frames: new Counter({
      name: 'celfarm_frames_total',
      help: 'Frames finished, by outcome (completed, failed, cancelled) and failure reason.',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    framesFlagged: new Counter({
      name: 'celfarm_frames_flagged_total',
      help: 'Frames flagged for review by shot QA, by project and reason (the score past its threshold); a frame counts once per reason.',
      labelNames: ['project', 'reason'],
      registers: [registry],
    }),
    contextCache: new Counter({
      name: 'celfarm_reference_context_cache_total',
      help: 'Reference-context lookups by result (memory, store, miss).',
      labelNames: ['result'],
      registers: [registry],
    }),
    busySeconds: new Counter({
      name: 'celfarm_worker_busy_seconds_total',
      help: 'Inference seconds by project (the GPU-seconds a studio is billed).',
      labelNames: ['project'],
      registers: [registry],
    }),
    modelLoad: new Gauge({
      name: 'celfarm_model_load_seconds',
      help: 'Seconds the worker took to load its model pack.',
      labelNames: ['pack'],
      registers: [registry],
    }),
    shotsSubmitted: new Counter({
      name: 'celfarm_shots_submitted_total',
      help: 'Shots accepted by the API.',
      registers: [registry],
    }),
  };
}

export type FarmMetrics = ReturnType<typeof createMetrics>;
