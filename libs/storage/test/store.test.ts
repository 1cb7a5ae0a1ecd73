/** The S3 adapter against a real S3 endpoint (s3rver): objects, streamed downloads, listing, presigned URLs. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startS3, type RunningS3 } from '@celfarm/services';
import { shotKeys } from '../src/keys.ts';
import { getToFile, parseS3Location, S3ObjectStore, s3OptionsFrom, withBucket, type S3Config } from '../src/store.ts';

describe('S3ObjectStore on s3rver', () => {
  let dir: string;
  let s3: RunningS3;
  let store: S3ObjectStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-s3-'));
    s3 = await startS3(dir, 'store-test');
    store = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: 'store-test', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  });
  after(async () => {
    store.destroy();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts, gets, lists in order and deletes a shot prefix', async () => {
    const keys = shotKeys('pre', 'demo', 'shot1');
    assert.equal(keys.output(3), 'pre/projects/demo/shots/shot1/outputs/00003.png');
    // Named after the frame's file when it has one, a PNG whatever the input.
    assert.equal(keys.output(3, 'sh010_0003.jpg'), 'pre/projects/demo/shots/shot1/outputs/sh010_0003.png');
    assert.equal(keys.preview(3, 'sh010_0003.jpg'), 'pre/projects/demo/shots/shot1/outputs/previews/sh010_0003.webp');
    for (const f of [2, 1, 3]) await store.put(keys.output(f), Buffer.from(`frame ${f}`), 'image/png');
    assert.equal(Buffer.from((await store.get(keys.output(2)))!).toString(), 'frame 2');
    assert.equal(await store.get(keys.output(9)), null);
    assert.equal((await store.head(keys.output(1)))!.size, 7);
    assert.deepEqual((await store.list(keys.outputsPrefix)).map((o) => o.key.split('/').pop()), ['00001.png', '00002.png', '00003.png']);
    assert.equal(await store.deletePrefix(`${keys.root}/`), 3);
    assert.deepEqual(await store.list(keys.outputsPrefix), []);
  });

  it('lists and deletes a prefix of more than 1,000 objects (listings come in pages of 1,000)', async () => {
    // A 1,100-frame shot's outputs: deleting the shot must find them all.
    const keys = Array.from({ length: 1100 }, (_, i) => `big/outputs/${String(i + 1).padStart(5, '0')}.png`);
    for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => store.put(k, Buffer.from('x'))));
    const listed = await store.list('big/');
    assert.equal(listed.length, 1100);
    assert.deepEqual(listed.map((o) => o.key), keys);
    assert.equal(await store.deletePrefix('big/'), 1100);
    assert.deepEqual(await store.list('big/'), []);
  });

  it('presigns GETs that download the object, reusing a URL within half its lifetime', async () => {
    await store.put('a/b.png', Buffer.from('pixels'), 'image/png');
    const url = await store.presignGet('a/b.png', 600);
    assert.equal(await (await fetch(url)).text(), 'pixels');
    assert.equal(await store.presignGet('a/b.png', 600), url, 'cached');
    const put = await store.presignPut('a/c.png', 600);
    assert.equal((await fetch(put, { method: 'PUT', body: 'uploaded', headers: { 'content-type': 'image/png' } })).status, 200);
    assert.equal(Buffer.from((await store.get('a/c.png'))!).toString(), 'uploaded');
    await assert.doesNotReject(store.ping());
  });

  it('streams an object into a file with its sha256, and answers null for a missing one', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    await store.put('big/blob.bin', bytes);
    const path = join(dir, 'blob.bin');
    const got = await getToFile(store, 'big/blob.bin', path);
    assert.deepEqual(got, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    assert.ok((await readFile(path)).equals(bytes));

    const chunks: Buffer[] = [];
    for await (const c of (await store.getStream('big/blob.bin'))!) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(bytes));

    assert.equal(await store.getStream('big/none.bin'), null);
    assert.equal(await getToFile(store, 'big/none.bin', join(dir, 'none.bin')), null);
    await assert.rejects(stat(join(dir, 'none.bin')), { code: 'ENOENT' });
  });

  it('reads a location configured in another bucket (PACK_S3_PREFIX=s3://bucket/prefix) with a store of that bucket', async () => {
    assert.deepEqual(parseS3Location('s3://models/packs/analytic/', 'celfarm'), { bucket: 'models', prefix: 'packs/analytic' });
    assert.deepEqual(parseS3Location('/packs/analytic', 'celfarm'), { bucket: 'celfarm', prefix: 'packs/analytic' });
    assert.deepEqual(parseS3Location('s3://models', 'celfarm'), { bucket: 'models', prefix: '' });

    const config: S3Config = { S3_ENDPOINT: s3.endpoint, S3_REGION: 'us-east-1', S3_BUCKET: 'store-test', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_FORCE_PATH_STYLE: true };
    const models = new S3ObjectStore(s3OptionsFrom(config, 'models'));
    await models.ensureBucket();
    await models.put('packs/analytic/pack.json', Buffer.from('{"from":"models"}'));
    models.destroy();
    await store.put('packs/analytic/pack.json', Buffer.from('{"from":"store-test"}'));

    const read = async (location: string) => {
      const { bucket, prefix } = parseS3Location(location, config.S3_BUCKET);
      return withBucket(config, store, bucket, async (s) => Buffer.from((await s.get(`${prefix}/pack.json`))!).toString());
    };
    assert.equal(await read('s3://models/packs/analytic'), '{"from":"models"}');
    assert.equal(await read('packs/analytic'), '{"from":"store-test"}');
    assert.equal(await withBucket(config, store, 'store-test', (s) => Promise.resolve(s === store)), true, 'its own bucket: the same client');
  });
});
