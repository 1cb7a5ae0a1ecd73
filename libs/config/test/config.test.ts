/**
 * The Redis part of the environment schema: a plain or hash-tagged REDIS_PREFIX, Cluster seeds in
 * REDIS_CLUSTER_NODES, and a Cluster refused, saying why, with a prefix its keys would scatter under.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, isHashTagged, loadConfig } from '../src/index.ts';

/** The message of the ConfigError `env` raises. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

describe('Redis configuration', () => {
  it('takes a plain prefix or one hash tag, and nothing else', () => {
    assert.equal(loadConfig({}).REDIS_PREFIX, 'celfarm');
    assert.equal(loadConfig({ REDIS_PREFIX: 'studio-b_2' }).REDIS_PREFIX, 'studio-b_2');
    assert.equal(loadConfig({ REDIS_PREFIX: '{celfarm}' }).REDIS_PREFIX, '{celfarm}');
    for (const bad of ['{celfarm', 'celfarm}', '{}', '{a}{b}', 'a{b}', '{a:b}', 'a b']) {
      assert.match(refusal({ REDIS_PREFIX: bad }), /REDIS_PREFIX: must be letters, digits, _ and - \(e\.g\. celfarm\), optionally wrapped in one hash tag/, bad);
    }
    assert.deepEqual(['{celfarm}', 'celfarm'].map(isHashTagged), [true, false]);
  });

  it('connects to one Redis unless cluster seeds are given', () => {
    assert.equal(loadConfig({}).REDIS_CLUSTER_NODES, undefined);
    const c = loadConfig({ REDIS_CLUSTER_NODES: ' redis-0.farm:6379, 10.0.0.6:7001,[::1]:7002 ', REDIS_PREFIX: '{celfarm}', REDIS_URL: 'rediss://:secret@redis.farm:6379/0' });
    assert.deepEqual(c.REDIS_CLUSTER_NODES, [
      { host: 'redis-0.farm', port: 6379 },
      { host: '10.0.0.6', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    for (const bad of ['redis-0.farm', 'a:0', 'a:70000', 'redis://a:1', ',']) {
      assert.match(refusal({ REDIS_CLUSTER_NODES: bad, REDIS_PREFIX: '{celfarm}' }), /REDIS_CLUSTER_NODES: must be comma-separated host:port seeds/, bad);
    }
  });

  it('refuses a Cluster with a prefix that is no hash tag, or a database other than 0, saying why — among every other problem', () => {
    const message = refusal({ REDIS_CLUSTER_NODES: '10.0.0.5:6379', REDIS_PREFIX: 'celfarm', REDIS_URL: 'redis://10.0.0.5:6379/2', API_PORT: 'eighty' });
    const lines = message.split('\n').slice(1).map((l) => l.trim());
    assert.ok(lines.some((l) => l.startsWith('API_PORT: ')), message);
    assert.ok(
      lines.includes(
        "REDIS_PREFIX: must be a hash tag such as {celfarm} when REDIS_CLUSTER_NODES is set: BullMQ's scripts and the farm's transactions " +
          'each touch many keys, which a Redis Cluster runs only when they all hash to one slot',
      ),
      message,
    );
    assert.ok(lines.includes('REDIS_URL: selects database 2, but a Redis Cluster has only database 0 (REDIS_CLUSTER_NODES is set)'), message);
    // The default prefix is refused the same way: a Cluster needs the tag spelled out.
    assert.match(refusal({ REDIS_CLUSTER_NODES: '10.0.0.5:6379' }), /REDIS_PREFIX: must be a hash tag such as \{celfarm\}/);
  });
});
