/**
 * /v1/webhooks on the wire: subscriptions of a project and their delivery attempts. What
 * libs/webhooks stores as well (subscribed event types, logged attempts) is its own declaration,
 * re-exported from its zod-only records module.
 */
import { z } from 'zod';
import { EVENT_TYPES } from '@celfarm/jobs/event-types';
import { deliveryAttemptSchema, subscribableEventSchema } from '@celfarm/webhooks/records';

export { deliveryAttemptSchema, subscribableEventSchema, type DeliveryAttempt, type SubscribableEvent } from '@celfarm/webhooks/records';

export const createWebhookSchema = z.strictObject({
  /** http(s) URL; private and loopback addresses only when allow-listed for the project. */
  url: z.string().min(1).max(2048).meta({ description: 'http or https URL the events are POSTed to' }),
  events: z
    .array(subscribableEventSchema)
    .min(1)
    .max(EVENT_TYPES.length + 1)
    .meta({ description: `Event types to receive, or ["*"] for all: ${EVENT_TYPES.join(', ')}` }),
  description: z.string().max(500).optional(),
});
export type CreateWebhook = z.output<typeof createWebhookSchema>;
export type CreateWebhookInput = z.input<typeof createWebhookSchema>;

export const updateWebhookSchema = z
  .strictObject({
    events: createWebhookSchema.shape.events.optional(),
    description: z.string().max(500).optional(),
    /** A disabled subscription receives nothing until it is enabled again. */
    disabled: z.boolean().optional(),
  })
  .refine((b) => b.events !== undefined || b.description !== undefined || b.disabled !== undefined, 'give events, description or disabled');
export type UpdateWebhook = z.output<typeof updateWebhookSchema>;

/** The query of `GET /v1/webhooks/{id}/deliveries`. */
export const deliveriesQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
export type DeliveriesQuery = z.output<typeof deliveriesQuerySchema>;

export const webhookViewSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(subscribableEventSchema),
  description: z.string().optional(),
  createdAt: z.string(),
  disabled: z.boolean(),
});
export type WebhookView = z.output<typeof webhookViewSchema>;

/** The answer to a create: the only time the secret is shown. */
export const webhookCreatedSchema = webhookViewSchema.extend({
  secret: z.string().meta({ description: 'Signing secret (`whsec_…`), shown only in this answer' }),
});
export type WebhookCreated = z.output<typeof webhookCreatedSchema>;

export const webhookListSchema = z.object({ webhooks: z.array(webhookViewSchema) });
export type WebhookList = z.output<typeof webhookListSchema>;

/** Newest first. */
export const deliveryListSchema = z.object({ deliveries: z.array(deliveryAttemptSchema) });
export type DeliveryList = z.output<typeof deliveryListSchema>;

export const redeliverySchema = z.object({ eventId: z.string(), subscriptionId: z.string(), jobId: z.string() });
export type Redelivery = z.output<typeof redeliverySchema>;
