/**
 * Webhook subscriptions of the caller's project: create (the target passes the SSRF guard, the
 * secret is shown once), list, view, delete, the delivery log, redelivery of a past event and a
 * ping. Another project's subscription is a 404, never a 403: its existence is not disclosed.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  checkTarget,
  pingEvent,
  TargetRefusedError,
  type DeliveryAttempt,
  type Subscription,
  type WebhookEvent,
} from '@celfarm/webhooks';
import { ApiError, badRequest, notFound } from '../core/api-error.ts';
import { CLOCK } from '../core/tokens.ts';
import type { CreateWebhook, DeliveryList, Redelivery, UpdateWebhook, WebhookCreated, WebhookList, WebhookView } from './webhooks.dto.ts';
import { WEBHOOKS, type Webhooks } from './webhooks.tokens.ts';

/** How far back the event stream is searched for an event whose body was not kept. */
const STREAM_LOOKBACK = 1000;

const view = (s: Subscription): WebhookView => ({
  id: s.id,
  url: s.url,
  events: s.events,
  ...(s.description !== undefined ? { description: s.description } : {}),
  createdAt: s.createdAt,
  disabled: s.disabled ?? false,
});

@Injectable()
export class WebhooksService {
  constructor(
    @Inject(WEBHOOKS) private readonly webhooks: Webhooks,
    @Inject(CLOCK) private readonly clock: () => Date,
  ) {}

  async create(project: string, body: CreateWebhook): Promise<WebhookCreated> {
    let url: string;
    try {
      url = (await checkTarget(body.url, await this.webhooks.allowHosts(project))).url.href;
    } catch (e) {
      if (e instanceof TargetRefusedError) throw new ApiError(400, 'TARGET_NOT_ALLOWED', e.message, 'url');
      throw badRequest('url', `cannot resolve the host: ${(e as Error).message}`, 'TARGET_UNRESOLVABLE');
    }
    const sub = await this.webhooks.subscriptions.create(project, {
      url,
      events: body.events,
      ...(body.description ? { description: body.description } : {}),
    });
    return { ...view(sub), secret: sub.secret };
  }

  async list(project: string): Promise<WebhookList> {
    return { webhooks: (await this.webhooks.subscriptions.list(project)).map(view) };
  }

  async view(project: string, id: string): Promise<WebhookView> {
    return view(await this.mustGet(project, id));
  }

  /** Enables or disables a subscription, or changes its events or description. */
  async update(project: string, id: string, body: UpdateWebhook): Promise<WebhookView> {
    await this.mustGet(project, id);
    const sub = await this.webhooks.subscriptions.update(project, id, body);
    return view(sub!);
  }

  /** Deletes the subscription and its delivery log; pending deliveries are skipped. */
  async remove(project: string, id: string): Promise<void> {
    await this.mustGet(project, id);
    await this.webhooks.subscriptions.delete(project, id);
    await this.webhooks.log.clear(project, id);
  }

  async deliveries(project: string, id: string, limit: number): Promise<DeliveryList> {
    await this.mustGet(project, id);
    return { deliveries: await this.webhooks.log.list(project, id, limit) };
  }

  /** Queues `eventId` for the subscription again (a new job: attempts start over). */
  async redeliver(project: string, id: string, eventId: string): Promise<Redelivery> {
    const sub = await this.mustGet(project, id);
    const event = await this.event(project, eventId);
    const jobId = await this.webhooks.fanout.redeliver(sub, event, this.clock());
    return { eventId, subscriptionId: id, jobId };
  }

  /** Delivers a `webhook.ping` now, once, and answers with that attempt. */
  async ping(project: string, id: string): Promise<DeliveryAttempt> {
    const sub = await this.mustGet(project, id);
    const event = pingEvent(project, sub.id, sub.url, this.clock());
    await this.webhooks.archive.put(event);
    return this.webhooks.deliverer.attempt(sub, event, 1);
  }

  private async event(project: string, eventId: string): Promise<WebhookEvent> {
    const kept = await this.webhooks.archive.get(project, eventId);
    if (kept) return kept;
    const recent = await this.webhooks.bus.recent(project, STREAM_LOOKBACK);
    const found = recent.find((e) => e.id === eventId);
    if (!found) throw notFound('event', eventId);
    return found;
  }

  private async mustGet(project: string, id: string): Promise<Subscription> {
    const sub = await this.webhooks.subscriptions.get(project, id);
    if (!sub) throw notFound('webhook', id);
    return sub;
  }
}
