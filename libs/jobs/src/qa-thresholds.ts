/**
 * Shot QA thresholds a project sets for its shots (`PUT /v1/qa/thresholds`), and how a shot's are
 * resolved at submit: the request's, over the project's, over the farm's (QA_THRESHOLDS), over
 * libs/qa's defaults — recorded on the shot, so every worker judges its frames alike and later
 * changes apply to later shots only.
 */
import { qaThresholdsSchema, type QaThresholdsSetting } from './records.ts';
import type { RedisClient } from './redis.ts';

export class QaThresholdStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'celfarm',
  ) {}

  private key(project: string): string {
    return `${this.prefix}:qa-thresholds:${project}`;
  }

  /** What the project has set (`{}`: nothing, the farm's apply). */
  async get(project: string): Promise<QaThresholdsSetting> {
    const raw = await this.redis.get(this.key(project));
    return raw ? qaThresholdsSchema.parse(JSON.parse(raw)) : {};
  }

  /** Replaces what the project has set; `{}` clears it. */
  async set(project: string, thresholds: QaThresholdsSetting): Promise<QaThresholdsSetting> {
    const parsed = qaThresholdsSchema.parse(thresholds);
    if (Object.keys(parsed).length === 0) await this.redis.del(this.key(project));
    else await this.redis.set(this.key(project), JSON.stringify(parsed));
    return parsed;
  }

  /** Deletes every project's (tests, a project's removal). */
  async clear(project: string): Promise<void> {
    await this.redis.del(this.key(project));
  }
}

/** Every threshold set, later layers over earlier ones (undefined members do not override). */
export function resolveQaThresholds<T extends Record<string, number>>(defaults: T, ...layers: (Partial<T> | undefined)[]): T {
  const out: Record<string, number> = { ...defaults };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer ?? {})) if (v !== undefined) out[k] = v;
  }
  return out as T;
}
