/**
 * Farm events as clients see them: streamed to the dashboard (`GET /v1/live`, `event: farm`) and
 * POSTed to webhook subscribers as `{id, type, createdAt, project, shotId?, frame?, data}`. The
 * farm's own declarations (libs/jobs, libs/webhooks), re-exported from their zod-only modules.
 */
export { EVENT_TYPES, farmEventSchema, type EventType, type FarmEvent } from '@celfarm/jobs/event-types';
export {
  PING_EVENT,
  WEBHOOK_EVENT_TYPES,
  webhookEventSchema,
  type WebhookEvent,
  type WebhookEventType,
} from '@celfarm/webhooks/records';
