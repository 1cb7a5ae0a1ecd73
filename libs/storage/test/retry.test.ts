/**
 * Storage outages: the S3 adapter's retry policy (every call its own attempts, no budget an
 * outage can drain; capped backoff with jitter), what counts as "unreachable", and the waiting
 * store that holds calls until the store is back — against s3rver behind a proxy that really
 * cuts connections.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startS3, startTcpProxy, type RunningS3, type TcpProxy } from '@celfarm/services';
import { backoffDelay, isUnreachable, StoreUnavailableError } from '../src/retry.ts';
import { S3ObjectStore, type ObjectInfo, type ObjectStore, type S3StoreOptions } from '../src/store.ts';
import { WaitingObjectStore } from '../src/waiting-store.ts';

const s3Options = (endpoint: string, over: Partial<S3StoreOptions> = {}): S3StoreOptions => ({
  endpoint, region: 'us-east-1', bucket: 'retry-test', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true, ...over,
});

describe('S3 retry policy', () => {
  it('backs off exponentially from the base, capped, with at least half of each step', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 5000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 20].map((r) => backoffDelay(r, policy, () => 1)), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    assert.deepEqual([1, 2, 7, 20].map((r) => backoffDelay(r, policy, () => 0)), [50, 100, 2500, 2500]);
  });

  it('tells an unreachable store from an answer about the request', () => {
    const http = (status: number, name = 'Error') => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    assert.ok(isUnreachable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', $metadata: { attempts: 3 } })));
    assert.ok(isUnreachable(Object.assign(new Error('reset'), { code: 'ECONNRESET' })));
    assert.ok(isUnreachable(http(503, 'ServiceUnavailable')));
    assert.ok(isUnreachable(http(500, 'InternalError')));
    assert.ok(isUnreachable(Object.assign(new Error('timed out'), { name: 'TimeoutError' })));
    assert.ok(isUnreachable(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'EPIPE' }) })));
    assert.ok(!isUnreachable(http(404, 'NoSuchKey')));
    assert.ok(!isUnreachable(http(403, 'AccessDenied')));
    assert.ok(!isUnreachable(new Error('Expected a PNG')));
  });

  it('gives every call its full attempts however many calls failed before (no shared retry budget)', async () => {
    // Nothing listens on this port: every attempt is refused at once. The SDK's standard
    // strategy draws retries from one quota per client: after a few dozen failed calls here,
    // calls got one attempt each.
    const store = new S3ObjectStore(s3Options(`http://127.0.0.1:${await freePort()}`, { retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 } }));
    try {
      const attempts: number[] = [];
      for (let i = 0; i < 80; i++) {
        await assert.rejects(store.get(`k/${i}`), (e: unknown) => {
          assert.ok(e instanceof StoreUnavailableError, String(e));
          attempts.push((e.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? -1);
          return true;
        });
      }
      assert.deepEqual(new Set(attempts), new Set([4]), `attempts per call: ${attempts.join(',')}`);
    } finally {
      store.destroy();
    }
  });
});

/** A store that is unreachable for the first `failures` calls, then answers. */
class FlakyStore implements Partial<ObjectStore> {
  calls = 0;
  constructor(public failures: number, private readonly error: () => Error = () => new StoreUnavailableError('down')) {}
  async get(): Promise<Uint8Array | null> {
    if (++this.calls <= this.failures) throw this.error();
    return new Uint8Array([1, 2, 3]);
  }
  async head(): Promise<ObjectInfo | null> {
    throw this.error();
  }
}

describe('WaitingObjectStore', () => {
  const waitingOn = (inner: FlakyStore, sleeps: number[], extra: ConstructorParameters<typeof WaitingObjectStore>[1] = {}) =>
    new WaitingObjectStore(inner as unknown as ObjectStore, {
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => 1,
      sleep: async (ms) => void sleeps.push(ms),
      ...extra,
    });

  it('retries a call while the store is unreachable, with capped backoff, and reports down then up', async () => {
    const inner = new FlakyStore(6);
    const sleeps: number[] = [];
    const changes: boolean[] = [];
    const store = waitingOn(inner, sleeps, { onChange: (a) => changes.push(a.available) });
    assert.deepEqual(await store.get('k'), new Uint8Array([1, 2, 3]));
    assert.equal(inner.calls, 7);
    assert.deepEqual(sleeps, [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual(changes, [false, true]);
    assert.equal(store.availability().available, true);
  });

  it('passes other errors through at once', async () => {
    const inner = new FlakyStore(1, () => Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    const sleeps: number[] = [];
    await assert.rejects(waitingOn(inner, sleeps).get('k'), { name: 'AccessDenied' });
    assert.deepEqual(sleeps, []);
  });

  it('stops waiting when closed: the waiting call fails with the store error', async () => {
    const inner = new FlakyStore(Infinity);
    let release: (() => void) | undefined;
    const store = new WaitingObjectStore(inner as unknown as ObjectStore, {
      sleep: (_ms, signal) =>
        new Promise((resolve, reject) => {
          release = resolve;
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        }),
    });
    const call = store.get('k');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.availability().available, false);
    assert.equal(store.availability().waiting, 1);
    assert.ok(release);
    store.close();
    await assert.rejects(call, StoreUnavailableError);
    await assert.rejects(store.head('k'), StoreUnavailableError, 'a closed store does not wait any more');
  });
});

describe('an S3 outage with connections really closed (s3rver behind a TCP proxy)', () => {
  let dir: string;
  let s3: RunningS3;
  let proxy: TcpProxy;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-outage-'));
    s3 = await startS3(dir, 'retry-test');
    proxy = await startTcpProxy({ targetPort: s3.port });
  });
  after(async () => {
    await proxy.close();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails fast without waiting, and a waiting store rides the outage out', async () => {
    const retry = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 };
    const direct = new S3ObjectStore(s3Options(proxy.url, { retry }));
    const patient = new WaitingObjectStore(new S3ObjectStore(s3Options(proxy.url, { retry })), { baseDelayMs: 50, maxDelayMs: 200 });
    try {
      await direct.put('a/b.bin', new Uint8Array([7, 7, 7]));
      assert.deepEqual(await patient.get('a/b.bin'), new Uint8Array([7, 7, 7]), 'warm: keep-alive connections are open');
      const reset = await proxy.cut();
      assert.ok(reset >= 1, 'open connections were reset');
      await assert.rejects(direct.get('a/b.bin'), StoreUnavailableError, 'the outage is real');
      await assert.rejects(direct.ping(), StoreUnavailableError, 'and a probe says so');

      const t0 = Date.now();
      const during = patient.get('a/b.bin');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(patient.availability().available, false, 'the waiting store knows the store is down');
      await proxy.restore();
      assert.deepEqual(await during, new Uint8Array([7, 7, 7]));
      assert.ok(Date.now() - t0 >= 1500, 'it waited');
      assert.equal(patient.availability().available, true);
    } finally {
      direct.destroy();
      (patient.inner as S3ObjectStore).destroy();
    }
  });
});
