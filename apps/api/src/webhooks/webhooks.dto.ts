/** Request and response shapes of /v1/webhooks (zod for validation, nestjs-zod DTOs for OpenAPI). */
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { EVENT_TYPES } from '@celfarm/jobs';
import { deliveryAttemptSchema, subscribableEventSchema } from '@celfarm/webhooks';

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

export const updateWebhookSchema = z
  .strictObject({
    events: createWebhookSchema.shape.events.optional(),
    description: z.string().max(500).optional(),
    /** A disabled subscription receives nothing until it is enabled again. */
    disabled: z.boolean().optional(),
  })
  .refine((b) => b.events !== undefined || b.description !== undefined || b.disabled !== undefined, 'give events, description or disabled');
export type UpdateWebhook = z.output<typeof updateWebhookSchema>;

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

export const webhookCreatedSchema = webhookViewSchema.extend({
  secret: z.string().meta({ description: 'Signing secret (`whsec_…`), shown only in this answer' }),
});
export type WebhookCreated = z.output<typeof webhookCreatedSchema>;

export const webhookListSchema = z.object({ webhooks: z.array(webhookViewSchema) });
export type WebhookList = z.output<typeof webhookListSchema>;

export const deliveryListSchema = z.object({ deliveries: z.array(deliveryAttemptSchema) });
export type DeliveryList = z.output<typeof deliveryListSchema>;

export const redeliverySchema = z.object({ eventId: z.string(), subscriptionId: z.string(), jobId: z.string() });
export type Redelivery = z.output<typeof redeliverySchema>;

export class CreateWebhookDto extends createZodDto(createWebhookSchema) {}
export class WebhookViewDto extends createZodDto(webhookViewSchema) {}
export class UpdateWebhookDto extends createZodDto(updateWebhookSchema) {}
export class WebhookCreatedDto extends createZodDto(webhookCreatedSchema) {}
export class WebhookListDto extends createZodDto(webhookListSchema) {}
export class DeliveryListDto extends createZodDto(deliveryListSchema) {}
export class DeliveryAttemptDto extends createZodDto(deliveryAttemptSchema) {}
export class RedeliveryDto extends createZodDto(redeliverySchema) {}
