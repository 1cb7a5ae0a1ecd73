/**
 * Settings resolved once, at submit, against the pack the API serves (the analytic pack: sizes are
 * multiples of 64 within 64–1024, default 128): what a studio sees in the submit answer and in
 * `GET /v1/shots/{id}` — the size its frames have rather than the pack's default, a fitted size
 * with a warning, a clear refusal naming the field for what cannot be rendered, knobs the mode
 * never reads named — and what the shot record holds for the workers.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { loadConfig } from '@celfarm/config';
import type { ApiErrorBody, ShotView, SubmitView } from '@celfarm/contract';
import { ShotStore } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startRedis, startS3, type RunningRedis, type RunningS3 } from '@celfarm/services';
import { S3ObjectStore } from '@celfarm/storage';
import { KeyStore } from '@celfarm/tenancy';
import { createApp } from '../src/app.ts';

const BUCKET = 'celfarm';
type Answer<T> = { status: number; text: string; body: T & Partial<ApiErrorBody> };

describe('settings resolved at submit (apps/api on redis-server + s3rver)', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let s3: RunningS3;
  let app: NestFastifyApplication;
  let base: string;
  let redis: Redis;
  let store: ShotStore;
  let objects: S3ObjectStore;
  let token: string;
  const prefix = `set${process.pid}`;
  const png = (size: number, i = 0) => encodePng(sketchFrame(size, size, i, 2).image);
  let reference: Buffer;

  const call = async <T>(method: string, path: string, body?: unknown): Promise<Answer<T>> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(`${base}${path}`, { method, headers, body: payload });
    const text = await r.text();
    return { status: r.status, text, body: (text ? JSON.parse(text) : {}) as Answer<T>['body'] };
  };
  /** A multipart submit of `frames` with the reference (and a background when given). */
  const submit = (settings: Record<string, unknown>, frames: Uint8Array[], background?: Uint8Array) => {
    const f = new FormData();
    f.append('request', JSON.stringify({ settings }));
    f.append('reference', new Blob([reference], { type: 'image/png' }), 'reference.png');
    if (background) f.append('background', new Blob([background], { type: 'image/png' }), 'background.png');
    frames.forEach((b, i) => f.append('frames', new Blob([b], { type: 'image/png' }), `sh010_${String(i + 1).padStart(4, '0')}.png`));
    return call<SubmitView>('POST', '/v1/shots', f);
  };
  const view = async (id: string) => (await call<ShotView>('GET', `/v1/shots/${id}`)).body;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-settings-'));
    [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
    await buildAnalyticPack(join(dir, 'pack'));
    const config = loadConfig({
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: BUCKET,
      PACK_DIR: join(dir, 'pack'),
      HEARTBEAT_MS: '1000',
    });
    app = await createApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    redis = new Redis(redisServer.url);
    token = (await new KeyStore(redis, prefix).create('demo', 'settings-test', ['submit', 'read'])).token;
    store = new ShotStore(redis, prefix);
    objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    reference = await encodePng(halfImage(64, 64, COLOURS.red, COLOURS.grey));
  });

  after(async () => {
    await app?.close();
    redis?.disconnect();
    objects?.destroy();
    await s3?.stop().catch(() => undefined);
    await redisServer?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("renders frames submitted at 256² at 256², not at the pack's default 128²", async () => {
    const r = await submit({ steps: 4, seed: 5 }, [await png(256, 0), await png(256, 1)]);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual([r.body.settings.width, r.body.settings.height, r.body.settings.sizeFrom], [256, 256, 'frames']);
    assert.deepEqual(r.body.warnings, []);
    const record = await store.get(r.body.id);
    assert.deepEqual(record?.settings, r.body.settings, 'the shot record holds the resolved settings the answer shows');
    assert.deepEqual(
      [record?.settings.seed, record?.settings.steps, record?.settings.sampler, record?.settings.refScales.length],
      [5, 4, 'diffuser_dpm', 16],
      'every value explicit for the workers',
    );
  });

  it('fits the frames to the pack, and a width to its multiple, with a warning in the answer and the shot view', async () => {
    const odd = await submit({ steps: 4 }, [await png(100)]);
    assert.equal(odd.status, 201, odd.text);
    assert.deepEqual([odd.body.settings.width, odd.body.settings.height], [128, 128]);
    assert.deepEqual(odd.body.warnings.map((w) => [w.code, w.field]), [['SIZE_FITTED', 'settings.width']]);
    assert.match(odd.body.warnings[0]!.message, /frames are 100×100; rendering 128×128/);

    const asked = await submit({ steps: 4, width: 100, height: 256 }, [await png(64)]);
    assert.equal(asked.status, 201, asked.text);
    assert.deepEqual([asked.body.settings.width, asked.body.settings.height, asked.body.settings.sizeFrom], [128, 256, 'request']);
    const warning = { code: 'SIZE_FITTED', field: 'settings.width', message: 'width 100 is not a multiple of 64; rendering 128' };
    assert.deepEqual(asked.body.warnings, [warning]);
    const seen = await view(asked.body.id);
    assert.deepEqual(seen.warnings, [warning], 'kept on the shot: GET /v1/shots/{id} shows it');
    assert.equal(seen.settings.width, 128);
    const listed = await call<{ shots: ShotView[] }>('GET', '/v1/shots?limit=50');
    assert.deepEqual(listed.body.shots.find((s) => s.id === asked.body.id)?.warnings, [warning], 'and the list');
  });

  it('refuses a size outside the pack’s range with a 400 naming the field and the range; nothing is stored', async () => {
    const before = (await store.list({ project: 'demo', limit: 500 })).shots.length;
    const frames = [await png(64)];
    for (const [settings, field, value] of [
      [{ width: 5000, height: 256 }, 'settings.width', '5000'],
      [{ width: 256, height: 1e12 }, 'settings.height', '1000000000000'],
      [{ width: 20, height: 256 }, 'settings.width', '20'],
      [{ width: 256 }, 'settings.height', undefined],
    ] as const) {
      const r = await submit(settings, frames);
      assert.equal(r.status, 400, `${JSON.stringify(settings)}: ${r.text}`);
      assert.deepEqual([r.body.error?.code, r.body.error?.field], ['INVALID_KNOB', field], r.text);
      if (value) assert.match(r.body.error!.message, new RegExp(`${value} is outside this pack's range: multiples of 64 within 64–1024`), r.text);
    }
    assert.equal((await store.list({ project: 'demo', limit: 500 })).shots.length, before, 'no shot created');
  });

  it('refuses removeForeground without a background image at submit, naming the field', async () => {
    const frames = [await png(64)];
    const r = await submit({ mode: 'background', removeForeground: true }, frames);
    assert.equal(r.status, 400, r.text);
    assert.deepEqual([r.body.error?.code, r.body.error?.field], ['INVALID_KNOB', 'settings.removeForeground']);
    assert.match(r.body.error!.message, /no background image/);
    const withBackground = await submit({ mode: 'background', removeForeground: true, steps: 4 }, frames, reference);
    assert.equal(withBackground.status, 201, withBackground.text);
    assert.equal(withBackground.body.settings.removeForeground, true);
  });

  it('names the knobs and inputs a mode never reads', async () => {
    const r = await submit({ mode: 'vanilla', mergeScale: 0.5, steps: 4 }, [await png(64)], reference);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.warnings.map((w) => [w.code, w.field]), [['IGNORED', 'settings.mergeScale'], ['IGNORED', 'background']]);
    assert.deepEqual((await view(r.body.id)).warnings, r.body.warnings);
  });

  it('reads the size of frames given by key at submit, and of uploaded frames at start', async () => {
    await objects.put('projects/demo/library/f1.png', await png(192), 'image/png');
    await objects.put('projects/demo/library/ref.png', reference, 'image/png');
    await objects.put('projects/demo/library/bad.png', Buffer.from('not a png'), 'image/png');
    const byKey = await call<SubmitView>('POST', '/v1/shots', {
      reference: { key: 'projects/demo/library/ref.png' },
      frames: { keys: ['projects/demo/library/f1.png'] },
    });
    assert.equal(byKey.status, 201, byKey.text);
    assert.deepEqual([byKey.body.settings.width, byKey.body.settings.height, byKey.body.settings.sizeFrom], [192, 192, 'frames']);
    const bad = await call<SubmitView>('POST', '/v1/shots', { reference: { key: 'projects/demo/library/ref.png' }, frames: { keys: ['projects/demo/library/bad.png'] } });
    assert.equal(bad.status, 400, bad.text);
    assert.deepEqual([bad.body.error?.code, bad.body.error?.field], ['INVALID_IMAGE', 'frames.keys[0]']);

    const up = await call<SubmitView>('POST', '/v1/shots', { settings: { steps: 4 }, reference: { upload: true }, frames: { upload: 1 } });
    assert.equal(up.status, 201, up.text);
    assert.equal(up.body.settings.sizeFrom, 'pack', 'no frame yet: the size waits for it');
    for (const [u, bytes] of [[up.body.uploads![0]!, reference], [up.body.uploads![1]!, await png(300)]] as const) {
      const res = await fetch(`${base}${u.url}`, { method: 'PUT', headers: { ...u.headers, authorization: `Bearer ${token}` }, body: bytes });
      assert.equal(res.status, 204, await res.text());
    }
    const started = await call<ShotView>('POST', `/v1/shots/${up.body.id}/start`);
    assert.equal(started.status, 200, started.text);
    assert.deepEqual([started.body.settings.width, started.body.settings.height, started.body.settings.sizeFrom], [320, 320, 'frames']);
    assert.deepEqual(started.body.warnings.map((w) => w.code), ['SIZE_FITTED']);
    assert.deepEqual((await store.get(up.body.id))?.settings.width, 320);
  });
});
