/**
 * The API's Redis connections (one Redis, or a Cluster with REDIS_CLUSTER_NODES: @celfarm/jobs
 * `connectRedis`). Each reports connection errors once per outage through the Nest logger
 * (without a listener ioredis prints a raw "Unhandled error event" trace on every reconnect
 * attempt) and says when it is connected again.
 */
import { Logger } from '@nestjs/common';
import { connectRedis, type RedisClient, type RedisConnectionOptions, type RedisTarget } from '@celfarm/jobs';

export function redisConnection(target: RedisTarget, name: string, options: RedisConnectionOptions): RedisClient {
  const logger = new Logger('redis');
  const client = connectRedis(target, options);
  let failing = '';
  client.on('error', (e: Error) => {
    if (e.message !== failing) logger.warn(`${name} connection: ${e.message}`);
    failing = e.message;
  });
  client.on('ready', () => {
    if (failing) logger.log(`${name} connection: connected again`);
    failing = '';
  });
  return client;
}
