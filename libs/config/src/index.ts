/**
 * The farm's configuration: environment variables parsed once at boot by one schema. Nothing
 * else reads `process.env`. Every problem is listed in one error.
 */
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');
const int = (d: number, min = 0) => z.coerce.number().int().min(min).default(d);

/** A plain prefix (`celfarm`) or one hash tag (`{celfarm}`). */
const REDIS_PREFIX_PATTERN = /^(?:[A-Za-z0-9_-]+|\{[A-Za-z0-9_-]+\})$/;

/**
 * Whether every key under `prefix` hashes to one Redis Cluster slot: the prefix is a hash tag,
 * so Redis hashes only what is inside the braces (`{celfarm}:shot:…` → `celfarm`).
 */
export const isHashTagged = (prefix: string): boolean => /^\{[^{}]+\}$/.test(prefix);

/** One seed of REDIS_CLUSTER_NODES. */
export interface ClusterNode {
  host: string;
  port: number;
}

function parseNode(seed: string): ClusterNode | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(seed);
  const port = Number(m?.[3]);
  return m && port >= 1 && port <= 65535 ? { host: m[1] ?? m[2]!, port } : undefined;
}

/** Shot QA scores a threshold may be set for, and the largest threshold each takes. */
const QA_SCORE_MAX = { palette: 100, flickerMean: 100, flickerShare: 1, lineFidelity: 1 } as const;
type QaScore = keyof typeof QA_SCORE_MAX;

export const configSchema = z.object({
  /** redis://host:port/db — the queue and shot records (AOF on, maxmemory-policy noeviction). */
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  /**
   * Prefix of every Redis key of the farm (BullMQ queues, records, events), so several farms can
   * share one Redis: letters, digits, `_` and `-`, optionally wrapped in one hash tag —
   * `{celfarm}` — which puts all of the farm's keys in one hash slot (required with
   * REDIS_CLUSTER_NODES).
   */
  REDIS_PREFIX: z
    .string()
    .regex(REDIS_PREFIX_PATTERN, 'must be letters, digits, _ and - (e.g. celfarm), optionally wrapped in one hash tag (e.g. {celfarm})')
    .default('celfarm'),
  /**
   * Seed nodes of a Redis Cluster, comma-separated `host:port` (`[v6 address]:port`): when set,
   * the services connect with ioredis's Cluster client (which finds the other nodes itself), and
   * REDIS_URL gives only the scheme (`rediss://` = TLS) and the credentials. Unset: the one Redis
   * at REDIS_URL.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const seeds = v.split(',').map((s) => s.trim()).filter(Boolean);
      const nodes = seeds.map(parseNode);
      const bad = seeds.filter((_, i) => !nodes[i]);
      if (bad.length || seeds.length === 0) {
        const which = bad.length ? `; not host:port: ${bad.join(', ')}` : '';
        ctx.issues.push({ code: 'custom', input: v, message: `must be comma-separated host:port seeds (e.g. 10.0.0.5:6379,10.0.0.6:6379)${which}` });
        return z.NEVER;
      }
      return nodes as ClusterNode[];
    }),
  /** Any S3-compatible endpoint (s3rver, MinIO, AWS); unset means AWS's own. */
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z.string().min(3).default('celfarm'),
  S3_ACCESS_KEY_ID: z.string().default('S3RVER'),
  S3_SECRET_ACCESS_KEY: z.string().default('S3RVER'),
  S3_FORCE_PATH_STYLE: bool.default(true),
  /** Prefix of every object key (`{prefix}/projects/...`). */
  S3_PREFIX: z.string().regex(/^[A-Za-z0-9._/-]*$/).default(''),
  /**
   * Attempts per S3 call (the first included), with capped exponential backoff and jitter and no
   * budget shared between calls. Past them a worker keeps waiting for the store; it fails nothing.
   */
  S3_MAX_ATTEMPTS: int(8, 1),
  /** Longest backoff between two tries of an S3 call, in ms. */
  S3_RETRY_MAX_DELAY_MS: int(5000, 10),
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: int(8080),
  /** Largest accepted image in pixels (width × height). */
  MAX_PIXELS: int(4096 * 4096, 1),
  /** Most frames in one shot. */
  MAX_FRAMES: int(2000, 1),
  /** Presigned URL lifetime in seconds. */
  PRESIGN_SECONDS: int(3600, 60),
  /** Attempts per frame before it counts as failed (transient errors only). */
  FRAME_ATTEMPTS: int(3, 1),
  /**
   * How many times a frame (or prepare) job may lose its worker — killed, or its lock expired —
   * and go to another; one more and it fails with WORKER_LOST (retryable). Counted apart from
   * FRAME_ATTEMPTS, which counts errors. High by default: a frame whose worker died goes back to
   * the head of the queue and is taken by the next worker that asks — often one just started,
   * which is the likeliest to die next when workers crash-loop — so an innocent frame can lose
   * several workers in a row (7 in a 45-kill storm here). The limit is a guard against a frame
   * that crashes every worker it lands on, not a budget for bad luck.
   */
  FRAME_STALL_LIMIT: int(20, 0),
  /** A shot fails when more than this share of its frames fail (0–1). */
  FAILED_FRAME_SHARE: z.coerce.number().min(0).max(1).default(0),
  /**
   * Shot QA thresholds of the farm, over the built-in defaults: `palette=8,lineFidelity=0.5`
   * (palette and flickerMean in ΔE00, 0–100; flickerShare and lineFidelity shares, 0–1). A
   * project's own (`PUT /v1/qa/thresholds`) and a submit's `qa.thresholds` override them.
   */
  QA_THRESHOLDS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: Partial<Record<QaScore, number>> = {};
      for (const pair of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        const m = /^([A-Za-z]+)\s*=\s*([0-9]*\.?[0-9]+)$/.exec(pair);
        const name = m?.[1] as QaScore | undefined;
        const value = Number(m?.[2]);
        if (!m || !name || !(name in QA_SCORE_MAX)) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(pair)}: expected <score>=<number>, score one of ${Object.keys(QA_SCORE_MAX).join(', ')}` });
        } else if (!(value >= 0 && value <= QA_SCORE_MAX[name])) {
          ctx.addIssue({ code: 'custom', message: `${name}=${m[2]}: must be 0–${QA_SCORE_MAX[name]}` });
        } else out[name] = value;
      }
      return out;
    }),
  /** Model pack: a local folder, or an S3 prefix (`s3://bucket/prefix` or a key prefix in S3_BUCKET). */
  PACK_DIR: z.string().optional(),
  PACK_S3_PREFIX: z.string().optional(),
  /** Where packs downloaded from S3 are cached (sha256-verified). */
  PACK_CACHE_DIR: z.string().default('.cache/packs'),
  WORKER_ID: z.string().optional(),
  /** Execution providers in order of preference, e.g. `cuda:0,cpu`. */
  WORKER_PROVIDERS: z.string().default('cpu'),
  WORKER_THREADS: int(0),
  /** `pipeline` (the model) or `noop` (answers instantly; for control-plane benchmarks only). */
  WORKER_ENGINE: z.enum(['pipeline', 'noop']).default('pipeline'),
  /** BullMQ lock duration: above the worst-case frame time; renewed at half this. */
  LOCK_DURATION_MS: int(120_000, 1000),
  /** Worker heartbeat period and expiry in the registry. */
  HEARTBEAT_MS: int(5000, 100),
  /**
   * Port of the worker's /metrics and /healthz endpoint: unset = none, 0 = any free port (the
   * worker prints the one it got).
   */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Address the worker's metrics endpoint binds: loopback unless a scraper elsewhere needs it. */
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Requests per second an API key may make (token-bucket refill), unless the key sets its own `rateLimit`. */
  RATE_LIMIT_PER_SECOND: z.coerce.number().positive().default(20),
  /** Token-bucket size: requests a key may make at once after a quiet spell. */
  RATE_LIMIT_BURST: int(100, 1),
  /** Lifetime of a dashboard session (the `celfarm_session` cookie), in seconds. */
  SESSION_TTL_SECONDS: int(12 * 3600, 60),
  /** Mark the session cookie `Secure` (set it when the API is served over HTTPS). */
  SESSION_COOKIE_SECURE: bool.default(false),
  /**
   * The address browsers reach the API at (e.g. `https://farm.studio.example`), when it differs
   * from what the API sees in `Host` (a TLS-terminating proxy that rewrites it): its origin is
   * accepted on cookie-authenticated writes, and an `https:` one turns on Strict-Transport-Security.
   */
  PUBLIC_URL: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL')
    .optional(),
  /**
   * More origins (comma-separated, e.g. `http://localhost:5173`) whose pages may make
   * cookie-authenticated writes, besides the API's own.
   */
  ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(z.string().url().refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// origin'))),
  /**
   * How clients get at stored inputs and outputs: `always` presigned URLs of the object store,
   * `never` paths on this API (it streams the objects to authenticated clients), `auto` presigned
   * unless S3_ENDPOINT is a loopback address — the embedded s3rver of the demo and the tests,
   * which checks no signatures, or any store only this host can reach.
   */
  S3_PRESIGN: z.enum(['auto', 'always', 'never']).default('auto'),
  /**
   * Whether this API process fans events out to webhook subscriptions (the outbox dispatcher) and
   * delivers them (the BullMQ worker of the `webhooks` queue). Keep it on in at least one API process.
   */
  WEBHOOK_DELIVERY: bool.default(true),
  /**
   * Attempts per webhook delivery, with exponential backoff from WEBHOOK_BACKOFF_MS: 13 attempts
   * from 20 s put the last one about 23 hours after the first (20 s · (2¹² − 1)).
   */
  WEBHOOK_ATTEMPTS: int(13, 1),
  WEBHOOK_BACKOFF_MS: int(20_000, 1),
  /** Time a receiver has to answer one delivery. */
  WEBHOOK_TIMEOUT_MS: int(10_000, 100),
  /** Deliveries in flight per API process. */
  WEBHOOK_CONCURRENCY: int(8, 1),
  /**
   * Webhook targets on private or loopback addresses allowed for every project (comma-separated
   * `host` or `host:port`); per project, `webhookAllowHosts`.
   */
  WEBHOOK_ALLOW_HOSTS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)),
}).superRefine((c, ctx) => {
  if (!Array.isArray(c.REDIS_CLUSTER_NODES)) return;
  // BullMQ's Lua scripts and the farm's MULTIs and scripts each touch several keys; a Cluster
  // runs those only when all their keys hash to one slot, which only a hash-tagged prefix ensures.
  if (typeof c.REDIS_PREFIX === 'string' && REDIS_PREFIX_PATTERN.test(c.REDIS_PREFIX) && !isHashTagged(c.REDIS_PREFIX)) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_PREFIX'],
      message:
        `must be a hash tag such as {${c.REDIS_PREFIX}} when REDIS_CLUSTER_NODES is set: BullMQ's scripts and the farm's ` +
        'transactions each touch many keys, which a Redis Cluster runs only when they all hash to one slot',
    });
  }
  const db = typeof c.REDIS_URL === 'string' ? /^rediss?:\/\/[^/]*\/(\d+)/.exec(c.REDIS_URL)?.[1] : undefined;
  if (db !== undefined && Number(db) !== 0) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: `selects database ${db}, but a Redis Cluster has only database 0 (REDIS_CLUSTER_NODES is set)` });
  }
  // Also when other variables failed (values here are then unchecked): one error lists every problem.
}, { when: () => true });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses `env` once; throws one ConfigError listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(Object.keys(configSchema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = configSchema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
