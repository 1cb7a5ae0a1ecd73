/**
 * The connection factory's settings, without a server (lazy connections): a Cluster's nodes get
 * REDIS_URL's credentials and TLS, a connection meant to fail fast does not queue commands while
 * the cluster is away, and a blocking reader's duplicate waits for it. The farm on a real cluster
 * is test/e2e/cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { connectRedis, duplicateRedis, isCluster } from '../src/redis.ts';

const seeds = [{ host: 'redis-0.farm', port: 6379 }, { host: 'redis-1.farm', port: 6380 }];

describe('Redis connections', () => {
  it('is one Redis at REDIS_URL without cluster seeds', () => {
    const r = connectRedis({ REDIS_URL: 'redis://:pw@10.0.0.5:6390/2' }, { lazyConnect: true, maxRetriesPerRequest: 2 });
    assert.ok(r instanceof Redis && !isCluster(r));
    assert.deepEqual([r.options.host, r.options.port, r.options.db, r.options.password, r.options.maxRetriesPerRequest], ['10.0.0.5', 6390, 2, 'pw', 2]);
    r.disconnect();
  });

  it("is a Cluster of the seeds, each node with REDIS_URL's credentials and TLS", () => {
    const c = connectRedis({ REDIS_URL: 'rediss://farm:p%40ss@ignored.example:1', REDIS_CLUSTER_NODES: seeds }, { lazyConnect: true, maxRetriesPerRequest: null });
    assert.ok(c instanceof Cluster && isCluster(c));
    const node = c.options.redisOptions!;
    assert.deepEqual([node.username, node.password, node.tls, node.maxRetriesPerRequest], ['farm', 'p@ss', {}, null]);
    // A connection that waits for Redis (BullMQ's) keeps commands while the cluster is away.
    assert.notEqual(c.options.enableOfflineQueue, false);
    c.disconnect();
  });

  it('fails fast on a Cluster when asked to, and a blocking duplicate of it waits instead', () => {
    const c = connectRedis({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: seeds }, { lazyConnect: true, maxRetriesPerRequest: 2 });
    assert.ok(isCluster(c));
    assert.deepEqual([c.options.enableOfflineQueue, c.options.redisOptions!.maxRetriesPerRequest, c.options.redisOptions!.tls], [false, 2, undefined]);
    const reader = duplicateRedis(c, { maxRetriesPerRequest: null, lazyConnect: true });
    assert.ok(isCluster(reader));
    assert.deepEqual([reader.options.enableOfflineQueue, reader.options.redisOptions!.maxRetriesPerRequest, reader.options.lazyConnect], [true, null, true]);
    c.disconnect();
    reader.disconnect();
  });
});
