/** /v1/webhooks: subscriptions of the caller's project (admin scope). */
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ZodValidationPipe } from 'nestjs-zod';
import {
  createWebhookSchema,
  deliveriesQuerySchema,
  updateWebhookSchema,
  type CreateWebhook,
  type DeliveriesQuery,
  type DeliveryAttempt,
  type DeliveryList,
  type Redelivery,
  type UpdateWebhook,
  type WebhookCreated,
  type WebhookList,
  type WebhookView,
} from '@celfarm/contract';
import { principalOf, RequireScope } from '../auth/principal.ts';
import { ErrorDto } from '../core/api-error.ts';
import {
  CreateWebhookDto,
  DeliveryAttemptDto,
  DeliveryListDto,
  RedeliveryDto,
  UpdateWebhookDto,
  WebhookCreatedDto,
  WebhookListDto,
  WebhookViewDto,
} from './webhooks.dto.ts';
import { WebhooksService } from './webhooks.service.ts';

const SIGNING_DOC = `Each delivery is a POST of \`{id, type, createdAt, project, shotId?, frame?, data}\` with
\`content-type: application/json\` and the Standard Webhooks headers \`webhook-id\` (the event id, the
same on every retry), \`webhook-timestamp\` (unix seconds) and \`webhook-signature: v1,<base64
HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed by the base64-decoded secret without "whsec_">\`.
A 2xx answer within 10 s is a delivery; anything else is retried with exponential backoff for about
a day. Targets on private, loopback, link-local or CGNAT addresses are refused unless their host
(or host:port) is allow-listed for the project.`;

@ApiTags('webhooks')
@Controller('v1/webhooks')
@RequireScope('admin')
export class WebhooksController {
  constructor(@Inject(WebhooksService) private readonly webhooks: WebhooksService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Subscribe a URL to farm events', description: SIGNING_DOC })
  @ApiBody({ type: CreateWebhookDto })
  @ApiResponse({ status: 201, description: 'Created; `secret` is shown only here', type: WebhookCreatedDto })
  @ApiResponse({ status: 400, description: 'Bad input; a refused target names `url`', type: ErrorDto })
  create(@Req() req: FastifyRequest, @Body(new ZodValidationPipe(createWebhookSchema)) body: CreateWebhook): Promise<WebhookCreated> {
    return this.webhooks.create(principalOf(req).project, body);
  }

  @Get()
  @ApiOperation({ summary: "The project's webhook subscriptions (without secrets)" })
  @ApiResponse({ status: 200, type: WebhookListDto })
  list(@Req() req: FastifyRequest): Promise<WebhookList> {
    return this.webhooks.list(principalOf(req).project);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One subscription (without its secret)' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: WebhookViewDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  view(@Req() req: FastifyRequest, @Param('id') id: string): Promise<WebhookView> {
    return this.webhooks.view(principalOf(req).project, id);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Disable or enable a subscription, or change its events or description' })
  @ApiParam({ name: 'id' })
  @ApiBody({ type: UpdateWebhookDto })
  @ApiResponse({ status: 200, type: WebhookViewDto })
  @ApiResponse({ status: 400, description: 'Bad input; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  update(
    @Req() req: FastifyRequest,
    @Param('id') id: string,
    @Body(new ZodValidationPipe(updateWebhookSchema)) body: UpdateWebhook,
  ): Promise<WebhookView> {
    return this.webhooks.update(principalOf(req).project, id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a subscription and its delivery log; pending deliveries are dropped' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 204 })
  @ApiResponse({ status: 404, type: ErrorDto })
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<void> {
    await this.webhooks.remove(principalOf(req).project, id);
  }

  @Get(':id/deliveries')
  @ApiOperation({ summary: 'Delivery attempts, newest first (status or error, duration, attempt number)' })
  @ApiParam({ name: 'id' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–1000, default 50' })
  @ApiResponse({ status: 200, type: DeliveryListDto })
  @ApiResponse({ status: 400, description: 'A bad `limit`', type: ErrorDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  deliveries(
    @Req() req: FastifyRequest,
    @Param('id') id: string,
    @Query(new ZodValidationPipe(deliveriesQuerySchema)) query: DeliveriesQuery,
  ): Promise<DeliveryList> {
    return this.webhooks.deliveries(principalOf(req).project, id, query.limit);
  }

  @Post(':id/deliveries/:eventId/redeliver')
  @HttpCode(202)
  @ApiOperation({ summary: 'Deliver a past event again (same webhook-id; attempts start over)' })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'eventId' })
  @ApiResponse({ status: 202, description: 'Queued', type: RedeliveryDto })
  @ApiResponse({ status: 404, description: 'Unknown subscription or event', type: ErrorDto })
  redeliver(@Req() req: FastifyRequest, @Param('id') id: string, @Param('eventId') eventId: string): Promise<Redelivery> {
    return this.webhooks.redeliver(principalOf(req).project, id, eventId);
  }

  @Post(':id/ping')
  @HttpCode(200)
  @ApiOperation({ summary: 'Deliver a `webhook.ping` event now and answer with the attempt' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: DeliveryAttemptDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  ping(@Req() req: FastifyRequest, @Param('id') id: string): Promise<DeliveryAttempt> {
    return this.webhooks.ping(principalOf(req).project, id);
  }
}
