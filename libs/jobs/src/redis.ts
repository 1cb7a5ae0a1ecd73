/**
 * The farm's Redis connections, made in one place from REDIS_URL and REDIS_CLUSTER_NODES: one
 * Redis (ioredis `Redis`) or a Redis Cluster (ioredis `Cluster`, seeded by the listed nodes, with
 * REDIS_URL's credentials and TLS on every node). Records, events, webhooks and tenancy take
 * either as a {@link RedisClient}; on a Cluster the farm's prefix is a hash tag (libs/config
 * refuses anything else), so all its keys — BullMQ's too — share one slot and its MULTIs and
 * scripts run as they do on one Redis.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** A connection to the farm's Redis: one server, or a Cluster. */
export type RedisClient = Redis | Cluster;

/** What a connection is made from: the parsed config (libs/config) has both. */
export interface RedisTarget {
  /** `redis[s]://[user:password@]host:port[/db]`; with cluster nodes only its scheme and credentials count. */
  REDIS_URL: string;
  /** Seeds of a Redis Cluster; unset or empty: the one Redis at REDIS_URL. */
  REDIS_CLUSTER_NODES?: readonly { host: string; port: number }[] | undefined;
}

export interface RedisConnectionOptions {
  /**
   * Reconnect attempts a command waits through before it fails; `null` waits as long as it takes.
   * BullMQ workers and other blocking readers need `null`. Default: ioredis's (20). On a Cluster a
   * number also means: while no node is reachable, commands fail at once instead of queueing.
   */
  maxRetriesPerRequest?: number | null;
  /** Connect on `connect()` (or the first command) instead of at once. Default false. */
  lazyConnect?: boolean;
  /** Time allowed to open one connection, in ms. Default: ioredis's (10 000). */
  connectTimeout?: number;
  /** `false`: a failed or lost connection is not retried (one-shot commands). Default true. */
  reconnect?: boolean;
}

/** Whether `client` is a Redis Cluster client. */
export const isCluster = (client: RedisClient): client is Cluster => client.isCluster;

/** A new connection to the farm's Redis (or Cluster), as `target` says. */
export function connectRedis(target: RedisTarget, options: RedisConnectionOptions = {}): RedisClient {
  const perConnection: RedisOptions = {
    ...(options.maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest: options.maxRetriesPerRequest } : {}),
    ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}),
  };
  const seeds = target.REDIS_CLUSTER_NODES;
  if (!seeds?.length) {
    return new Redis(target.REDIS_URL, {
      ...perConnection,
      lazyConnect: options.lazyConnect ?? false,
      ...(options.reconnect === false ? { retryStrategy: () => null } : {}),
    });
  }
  const url = new URL(target.REDIS_URL);
  const tls = url.protocol === 'rediss:';
  const clusterOptions: ClusterOptions = {
    lazyConnect: options.lazyConnect ?? false,
    // Node connections count reconnects per command, but while no node answers the Cluster client
    // itself would hold commands until one does: a connection meant to fail fast refuses them.
    ...(typeof options.maxRetriesPerRequest === 'number' ? { enableOfflineQueue: false } : {}),
    ...(options.reconnect === false ? { clusterRetryStrategy: () => null } : {}),
    // With TLS the nodes are dialled by the names the cluster announces, so certificates issued
    // for those names verify (ioredis would otherwise resolve them to addresses first).
    ...(tls ? { dnsLookup: (address: string, done: (e: null, a: string) => void) => done(null, address) } : {}),
    redisOptions: {
      ...perConnection,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  };
  return new Cluster(seeds.map(({ host, port }) => ({ host, port })), clusterOptions);
}

/**
 * Another connection to the same Redis (or Cluster) with the same settings but for `options`:
 * what a blocking reader takes so that its reads hold up no one else's commands.
 */
export function duplicateRedis(client: RedisClient, options: Pick<RedisConnectionOptions, 'maxRetriesPerRequest' | 'lazyConnect'> = {}): RedisClient {
  const perConnection = options.maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest: options.maxRetriesPerRequest } : {};
  const lazy = options.lazyConnect !== undefined ? { lazyConnect: options.lazyConnect } : {};
  // Cluster.duplicate takes (seeds, options) and merges `redisOptions`; Redis.duplicate takes options.
  if (isCluster(client)) {
    const queue = options.maxRetriesPerRequest !== undefined ? { enableOfflineQueue: options.maxRetriesPerRequest === null } : {};
    return client.duplicate([], { ...lazy, ...queue, redisOptions: perConnection });
  }
  return client.duplicate({ ...perConnection, ...lazy });
}
