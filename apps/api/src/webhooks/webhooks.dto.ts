/**
 * /v1/webhooks in the OpenAPI document: nestjs-zod DTOs of the wire contract (@celfarm/contract).
 * The types are re-exported for the webhooks module's own files.
 */
import { createZodDto } from 'nestjs-zod';
import {
  createWebhookSchema,
  deliveryAttemptSchema,
  deliveryListSchema,
  redeliverySchema,
  updateWebhookSchema,
  webhookCreatedSchema,
  webhookListSchema,
  webhookViewSchema,
} from '@celfarm/contract';

export type {
  CreateWebhook,
  DeliveriesQuery,
  DeliveryAttempt,
  DeliveryList,
  Redelivery,
  UpdateWebhook,
  WebhookCreated,
  WebhookList,
  WebhookView,
} from '@celfarm/contract';

export class CreateWebhookDto extends createZodDto(createWebhookSchema) {}
export class WebhookViewDto extends createZodDto(webhookViewSchema) {}
export class UpdateWebhookDto extends createZodDto(updateWebhookSchema) {}
export class WebhookCreatedDto extends createZodDto(webhookCreatedSchema) {}
export class WebhookListDto extends createZodDto(webhookListSchema) {}
export class DeliveryListDto extends createZodDto(deliveryListSchema) {}
export class DeliveryAttemptDto extends createZodDto(deliveryAttemptSchema) {}
export class RedeliveryDto extends createZodDto(redeliverySchema) {}
