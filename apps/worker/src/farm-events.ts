/**
 * Where farm events go: the event bus (its outbox feeds the API's webhook dispatcher). The bus
 * publishes an event id once, so a frame that runs twice still yields one `frame.completed`.
 */
import type { EventRef, EventType, ShotRecord } from '@celfarm/jobs';

export interface FarmEvents {
  publish(type: EventType, ref: EventRef, data?: Record<string, unknown>): Promise<unknown>;
}

/** Publishes `type` about `shot` (and one of its frames) in the shot's current round; without a bus, nothing. */
export async function publishAbout(
  events: FarmEvents | undefined,
  type: EventType,
  shot: Pick<ShotRecord, 'id' | 'project' | 'round'>,
  data: Record<string, unknown>,
  frame?: number,
): Promise<void> {
  await events?.publish(type, { project: shot.project, shotId: shot.id, round: shot.round, ...(frame !== undefined ? { frame } : {}) }, data);
}
