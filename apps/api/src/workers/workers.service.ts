/** The worker registry: workers whose heartbeat is younger than three heartbeat periods. */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import type { ShotStore, WorkerInfo } from '@celfarm/jobs';
import { CONFIG, SHOT_STORE } from '../core/tokens.ts';

@Injectable()
export class WorkersService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
  ) {}

  list(): Promise<WorkerInfo[]> {
    return this.store.workers(3 * this.config.HEARTBEAT_MS);
  }
}
