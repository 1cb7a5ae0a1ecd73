/**
 * The API's ioredis connections. Each reports connection errors once per outage through the
 * Nest logger (without a listener ioredis prints a raw "Unhandled error event" trace on every
 * reconnect attempt) and says when it is connected again.
 */
import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';

export function redisConnection(url: string, name: string, options: RedisOptions): Redis {
  const logger = new Logger('redis');
  const client = new Redis(url, options);
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
