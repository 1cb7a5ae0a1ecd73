/**
 * Where every shot operation starts: the caller's own shot (another project's is as absent as a
 * missing one), the object keys of a shot, and the farm's live worker count (for ETAs).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import type { ShotRecord, ShotStore } from '@celfarm/jobs';
import { shotKeys, type ObjectStore, type ShotKeys } from '@celfarm/storage';
import { notFound } from '../core/api-error.ts';
import { CONFIG, OBJECT_STORE, SHOT_STORE } from '../core/tokens.ts';

@Injectable()
export class ShotAccess {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
  ) {}

  /** The shot when it belongs to `owner`; else 404. */
  async owned(id: string, owner: string): Promise<ShotRecord> {
    const shot = await this.store.get(id);
    if (!shot || shot.project !== owner) throw notFound('shot', id);
    return shot;
  }

  keys(project: string, id: string): ShotKeys {
    return shotKeys(this.config.S3_PREFIX, project, id);
  }

  /** Deletes every object under the shot's root (inputs, masks, outputs, shot.json). */
  async discardObjects(project: string, id: string): Promise<void> {
    await this.objects.deletePrefix(`${this.keys(project, id).root}/`);
  }

  /** Workers whose heartbeat is recent (three periods). */
  async liveWorkers(): Promise<number> {
    return (await this.store.workers(3 * this.config.HEARTBEAT_MS)).length;
  }
}
