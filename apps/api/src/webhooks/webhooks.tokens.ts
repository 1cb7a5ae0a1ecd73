/** Injection tokens of the webhooks module (global: the shot service publishes through EVENT_PUBLISHER). */
import type { DeliveryLog, EventArchive, SubscriptionStore, WebhookDeliverer, WebhookFanout } from '@celfarm/webhooks';
import type { EventBus } from '@celfarm/jobs';

/**
 * `EventPublisher`: publishes a farm event once (the event bus; its outbox stream takes the event
 * to the webhook dispatcher, so publishing is all a caller does).
 */
export const EVENT_PUBLISHER = Symbol('celfarm.event-publisher');
/** {@link Webhooks}: the webhook stores, queue and deliverer of this process. */
export const WEBHOOKS = Symbol('celfarm.webhooks');

export interface Webhooks {
  bus: EventBus;
  subscriptions: SubscriptionStore;
  archive: EventArchive;
  log: DeliveryLog;
  fanout: WebhookFanout;
  deliverer: WebhookDeliverer;
  /** The project's `webhookAllowHosts` plus WEBHOOK_ALLOW_HOSTS. */
  allowHosts(project: string): Promise<readonly string[]>;
}
