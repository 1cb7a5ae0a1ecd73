/**
 * Where farm events go: the event bus (its outbox feeds the API's webhook dispatcher). The bus
 * publishes an event id once, so a frame that runs twice still yields one `frame.completed`.
 */
import { shotIdentity, type EventRef, type EventType, type ShotRecord } from '@celfarm/jobs';

export interface FarmEvents {
  publish(type: EventType, ref: EventRef, data?: Record<string, unknown>): Promise<unknown>;
}

/**
 * Publishes `type` about `shot` (and one of its frames) in the shot's current round; without a
 * bus, nothing. `shot.*` events carry the shot's name and studio ids, as a studio's pipeline
 * files them by those.
 */
export async function publishAbout(
  events: FarmEvents | undefined,
  type: EventType,
  shot: Pick<ShotRecord, 'id' | 'project' | 'round' | 'name' | 'externalIds'>,
  data: Record<string, unknown>,
  frame?: number,
): Promise<void> {
  const identity = type.startsWith('shot.') ? shotIdentity(shot) : {};
  await events?.publish(type, { project: shot.project, shotId: shot.id, round: shot.round, ...(frame !== undefined ? { frame } : {}) }, { ...identity, ...data });
}
