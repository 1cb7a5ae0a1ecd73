/**
 * The farm's Prometheus metrics (prom-client, `celfarm_` prefix). One registry per process;
 * api and worker register what they serve. Names and labels are the contract with dashboards.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const FRAME_STAGES = ['decode', 'mask', 'encode', 'sample', 'decode_vae', 'upload', 'qa'] as const;
export type FrameStage = (typeof FRAME_STAGES)[number];

/** The farm's queues as metrics read them at scrape time (libs/jobs FarmQueues). */
export interface QueueDepthSource {
  depths(): Promise<Record<string, Record<string, number>>>;
  /**
   * Per queue, the enqueue time (ms since the epoch) of the job waiting longest for a worker, or
   * null when none waits (libs/jobs queue-age.ts: waiting and prioritized, not delayed).
   */
  oldestWaiting?(): Promise<Record<string, number | null>>;
}

/** How a run of a webhook delivery job ended (one per attempt). */
export const WEBHOOK_DELIVERY_OUTCOMES = ['delivered', 'retrying', 'failed', 'skipped'] as const;
export type WebhookDeliveryOutcome = (typeof WEBHOOK_DELIVERY_OUTCOMES)[number];
/** Why a delivery attempt did not get a 2xx. */
export const WEBHOOK_FAILURE_REASONS = ['http_4xx', 'http_5xx', 'http_other', 'timeout', 'network', 'refused', 'farm'] as const;
export type WebhookFailureReason = (typeof WEBHOOK_FAILURE_REASONS)[number];
/** Where undelivered webhook work sits: see {@link WebhookBacklogSource}. */
export const WEBHOOK_BACKLOG_STAGES = ['outbox', 'waiting', 'retrying', 'active'] as const;
export type WebhookBacklogStage = (typeof WEBHOOK_BACKLOG_STAGES)[number];

/** One run of a webhook delivery job, as libs/webhooks' delivery processor reports it. */
export interface WebhookDeliveryReport {
  project: string;
  outcome: WebhookDeliveryOutcome;
  /** Why the attempt failed (outcomes `retrying` and `failed`). */
  reason?: WebhookFailureReason;
  /** Seconds from the event's publication to the receiver's 2xx (`delivered`; not for redeliveries). */
  latencySeconds?: number;
}

/**
 * Webhook work not delivered yet, read at scrape time (libs/webhooks WebhookBacklog): `outbox`,
 * events published but not yet fanned out to subscriptions; then deliveries (one per event and
 * subscription) `waiting` for a delivery worker, `retrying` (backing off after a failed
 * attempt) and `active` (being posted).
 */
export interface WebhookBacklogSource {
  backlog(): Promise<Record<WebhookBacklogStage, number>>;
}

export interface MetricsOptions {
  /** Milliseconds since the epoch, for the age of waiting jobs. Default `Date.now`. */
  clock?: () => number;
}

export function createMetrics(role: 'api' | 'worker', queues?: QueueDepthSource, options: MetricsOptions = {}) {
  const clock = options.clock ?? Date.now;
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

  const queueOldestWaiting = new Gauge({
    name: 'celfarm_queue_oldest_waiting_seconds',
    help: 'Age of the job waiting longest for a worker, per queue (waiting or prioritized, since it was enqueued; 0 when none waits).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      if (!queues?.oldestWaiting) return;
      try {
        const oldest = await queues.oldestWaiting();
        const now = clock();
        for (const [queue, ts] of Object.entries(oldest)) this.set({ queue }, ts === null ? 0 : Math.max(0, (now - ts) / 1000));
      } catch {
        // Redis unreachable: keep the last values, as for the queue depths.
      }
    },
  });

  // Webhooks are delivered by API processes only: their series are not served by workers.
  const apiOnly = role === 'api' ? [registry] : [];
  const webhookDeliveries = new Counter({
    name: 'celfarm_webhook_deliveries_total',
    help: 'Runs of webhook delivery jobs by project and outcome: delivered (2xx), retrying (failed, will be retried), failed (given up), skipped (subscription gone or disabled, event already delivered).',
    labelNames: ['project', 'outcome'],
    registers: apiOnly,
  });
  const webhookAttemptFailures = new Counter({
    name: 'celfarm_webhook_attempt_failures_total',
    help: 'Webhook delivery attempts without a 2xx, by reason (http_4xx, http_5xx, http_other, timeout, network, refused target, farm: Redis or the job itself).',
    labelNames: ['reason'],
    registers: apiOnly,
  });
  for (const reason of WEBHOOK_FAILURE_REASONS) webhookAttemptFailures.inc({ reason }, 0);
  const webhookLatency = new Histogram({
    name: 'celfarm_webhook_delivery_latency_seconds',
    help: "Seconds from an event's publication to its receiver's 2xx (retries included; redeliveries asked for by a user not counted).",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
    registers: apiOnly,
  });
  let webhookBacklogSource: WebhookBacklogSource | undefined;
  const webhookBacklog = new Gauge({
    name: 'celfarm_webhook_backlog',
    help: 'Webhook work not delivered yet, by stage: outbox (events not yet fanned out), waiting, retrying, active (deliveries: one per event and subscription).',
    labelNames: ['stage'],
    registers: apiOnly,
    async collect() {
      if (!webhookBacklogSource) return;
      try {
        const backlog = await webhookBacklogSource.backlog();
        for (const stage of WEBHOOK_BACKLOG_STAGES) this.set({ stage }, backlog[stage]);
      } catch {
        // Redis unreachable: keep the last values.
      }
    },
  });
  const projectsSeen = new Set<string>();

  return {
    registry,
    queueJobs,
    queueOldestWaiting,
    webhookDeliveries,
    webhookAttemptFailures,
    webhookLatency,
    webhookBacklog,
    /**
     * What libs/webhooks' delivery processor reports to. A project's outcomes all start at 0 the
     * first time it is seen, so `increase()` counts its first failure too (Prometheus sees no
     * increase in a series' first sample).
     */
    webhookDelivery: {
      record: (r: WebhookDeliveryReport): void => {
        if (!projectsSeen.has(r.project)) {
          projectsSeen.add(r.project);
          for (const outcome of WEBHOOK_DELIVERY_OUTCOMES) webhookDeliveries.inc({ project: r.project, outcome }, 0);
        }
        webhookDeliveries.inc({ project: r.project, outcome: r.outcome });
        if (r.reason) webhookAttemptFailures.inc({ reason: r.reason });
        if (r.latencySeconds !== undefined) webhookLatency.observe(Math.max(0, r.latencySeconds));
      },
    },
    /** Reads `celfarm_webhook_backlog` from `source` at every scrape (the API, once its webhook queue exists). */
    setWebhookBacklogSource(source: WebhookBacklogSource | undefined): void {
      webhookBacklogSource = source;
    },
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
