/**
 * @celfarm/tenancy against a real redis-server: the token bucket's arithmetic on an injected
 * clock (no sleeps), keys and sessions after revocation, webhook hosts, the audit stream's cap.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type RunningRedis } from '@celfarm/services';
import { AuditLog, KeyStore, RateLimiter, SessionStore } from '../src/index.ts';

describe('@celfarm/tenancy on redis-server', () => {
  let dir: string;
  let server: RunningRedis;
  let redis: Redis;
  const prefix = `ten${process.pid}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-tenancy-'));
    server = await startRedis(join(dir, 'redis'));
    redis = new Redis(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('token bucket: a full burst, then one request per 1/rate seconds, never more than the burst', async () => {
    const limiter = new RateLimiter(redis, prefix);
    const limits = { rate: 2, burst: 3 };
    const t0 = 1_000_000;
    const taken = [];
    for (let i = 0; i < 4; i++) taken.push(await limiter.take('k1', limits, t0));
    assert.deepEqual(taken.map((t) => t.allowed), [true, true, true, false]);
    assert.deepEqual(taken.map((t) => t.remaining), [2, 1, 0, 0]);
    assert.equal(taken[3]!.retryAfterMs, 500, 'one token every 500 ms at 2/s');
    assert.equal((await limiter.take('k1', limits, t0 + 499)).allowed, false);
    assert.equal((await limiter.take('k1', limits, t0 + 500)).allowed, true);
    assert.equal((await limiter.take('k1', limits, t0 + 500)).allowed, false);
    // A long quiet spell refills to the burst, no further.
    const later = t0 + 3_600_000;
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push((await limiter.take('k1', limits, later)).allowed);
    assert.deepEqual(burst, [true, true, true, false]);
    // A clock running behind (another host's) mints nothing.
    assert.equal((await limiter.take('k1', limits, later - 10_000)).allowed, false);
    assert.equal((await limiter.take('k2', limits)).allowed, true, 'a separate bucket, on Redis time');
  });

  it('keys: verify refuses a revoked key, identify still names it; sessions follow their key', async () => {
    const keys = new KeyStore(redis, prefix);
    const sessions = new SessionStore(redis, prefix);
    const { key, token } = await keys.create('p1', 'td', ['read', 'read', 'submit']);
    assert.deepEqual(key.scopes, ['read', 'submit']);
    assert.equal((await keys.verify(token))?.id, key.id);
    assert.equal(await keys.verify('cf_nope'), null);
    assert.equal(await keys.verify('not-even-a-key'), null);
    const sid = await sessions.create(key.id, 60);
    assert.equal((await sessions.get(sid))?.keyId, key.id);
    assert.ok((await redis.ttl(`${prefix}:session:${createHash('sha256').update(sid).digest('hex')}`)) <= 60);
    assert.equal(await keys.revoke('p2', key.id), false, 'not a key of p2');
    assert.equal(await keys.revoke('p1', key.id), true);
    assert.equal(await keys.verify(token), null);
    assert.equal((await keys.identify(token))?.id, key.id);
    assert.equal(await keys.live(key.id), null, 'its sessions resolve to no live key');
    await sessions.delete(sid);
    assert.equal(await sessions.get(sid), null);
    assert.equal(await sessions.get('../../etc'), null);
  });

  it('webhook hosts: allow once, disallow, refuse a malformed host or a missing project', async () => {
    const keys = new KeyStore(redis, prefix);
    await keys.ensureProject('hooks');
    await keys.allowWebhookHost('hooks', '127.0.0.1:8765');
    await keys.allowWebhookHost('hooks', 'Hooks.Example:443');
    await keys.allowWebhookHost('hooks', '127.0.0.1:8765');
    assert.deepEqual((await keys.project('hooks'))?.webhookAllowHosts, ['127.0.0.1:8765', 'hooks.example:443']);
    await keys.disallowWebhookHost('hooks', '127.0.0.1:8765');
    assert.deepEqual((await keys.project('hooks'))?.webhookAllowHosts, ['hooks.example:443']);
    await assert.rejects(keys.allowWebhookHost('hooks', 'http://x/'), /invalid webhook host/);
    await assert.rejects(keys.allowWebhookHost('nope', 'a:1'), /does not exist/);
  });

  it('audit log: newest first in pages, capped per project', async () => {
    const audit = new AuditLog(redis, prefix, 100);
    const entry = (i: number) => ({ at: new Date(i * 1000).toISOString(), keyId: 'key_1', keyName: 'td', method: 'POST', route: '/v1/shots', path: '/v1/shots', status: 201, target: `s${i}` });
    for (let i = 0; i < 1000; i++) await audit.append('p1', entry(i));
    await audit.append('p2', entry(0));
    const first = await audit.list('p1', { limit: 3 });
    assert.deepEqual(first.entries.map((e) => e.target), ['s999', 's998', 's997']);
    assert.equal(first.entries[0]!.status, 201);
    const second = await audit.list('p1', { limit: 3, before: first.next! });
    assert.deepEqual(second.entries.map((e) => e.target), ['s996', 's995', 's994']);
    const length = await redis.xlen(`${prefix}:audit:p1`);
    assert.ok(length >= 100 && length < 1000, `trimmed to about 100 (${length})`);
    assert.deepEqual((await audit.list('p2', { limit: 10 })).entries.map((e) => e.target), ['s0']);
  });
});
