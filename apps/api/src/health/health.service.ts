/** Readiness: Redis answers PING and the bucket answers HEAD, each within a deadline. */
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '@celfarm/jobs';
import type { ObjectStore } from '@celfarm/storage';
import { withTimeout } from '../core/concurrency.ts';
import { OBJECT_STORE, REDIS } from '../core/tokens.ts';

export type Check = { status: 'up' } | { status: 'down'; error: string };

export interface Readiness {
  ready: boolean;
  checks: { redis: Check; s3: Check };
}

/** Long enough for a healthy dependency, short enough for a probe (the S3 client retries). */
const CHECK_TIMEOUT_MS = 2000;

@Injectable()
export class HealthService {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
  ) {}

  async readiness(): Promise<Readiness> {
    const probe = async (what: string, p: () => Promise<unknown>): Promise<Check> => {
      try {
        await withTimeout(p(), CHECK_TIMEOUT_MS, `${what} did not answer within ${CHECK_TIMEOUT_MS} ms`);
        return { status: 'up' };
      } catch (e) {
        return { status: 'down', error: e instanceof Error ? e.message || e.name : String(e) };
      }
    };
    const [redis, s3] = await Promise.all([probe('redis', () => this.redis.ping()), probe('s3', () => this.objects.ping())]);
    return { ready: redis.status === 'up' && s3.status === 'up', checks: { redis, s3 } };
  }
}
