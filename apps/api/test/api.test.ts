/**
 * The API against real redis-server and s3rver with the analytic pack's manifest (no workers):
 * what a studio sees over HTTP, and what the farm holds afterwards — shot records, objects at
 * their deterministic keys, BullMQ jobs — including nothing at all for a refused request.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@celfarm/config';
import { EventBus, FarmQueues, ShotStore, type FrameRecord } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startRedis, startS3, type RunningRedis, type RunningS3 } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { KeyStore } from '@celfarm/tenancy';
import type { ApiErrorBody, FramePage, ShotList, SubmitView } from '@celfarm/contract';
import { createApp } from '../src/app.ts';

const SIZE = 64;
const BUCKET = 'celfarm';

/** CRC-32 of PNG chunks (ISO 3309), to forge a well-formed header. */
function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A PNG whose IHDR claims width × height, with a correct CRC (pixel data stays tiny). */
function pngClaiming(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  assert.equal(out.toString('latin1', 12, 16), 'IHDR');
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

function form(request: unknown, files: { reference?: Uint8Array; background?: Uint8Array; frames: Uint8Array[] }): FormData {
  const f = new FormData();
  f.append('request', typeof request === 'string' ? request : JSON.stringify(request));
  if (files.reference) f.append('reference', new Blob([files.reference], { type: 'image/png' }), 'reference.png');
  if (files.background) f.append('background', new Blob([files.background], { type: 'image/png' }), 'background.png');
  files.frames.forEach((b, i) => f.append('frames', new Blob([b], { type: 'image/png' }), `${String(i + 1).padStart(5, '0')}.png`));
  return f;
}

describe('apps/api on redis-server + s3rver', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let s3: RunningS3;
  let config: Config;
  let app: NestFastifyApplication;
  let base: string;
  let redis: Redis;
  let store: ShotStore;
  let queues: FarmQueues;
  let objects: S3ObjectStore;
  let sketches: Buffer[];
  let reference: Buffer;
  const prefix = `api${process.pid}`;
  /** One key (all scopes) per project the tests use. */
  const tokens: Record<string, string> = {};
  const PROJECTS = ['demo', 'other', 'bad', 'paging'];
  /** The token of `project`, or demo's for a project without one (e.g. a malformed name). */
  const tokenFor = (project: unknown) => tokens[typeof project === 'string' && project in tokens ? project : 'demo']!;

  const call = async <T = SubmitView>(
    method: string,
    path: string,
    init: { json?: unknown; body?: FormData; headers?: Record<string, string>; as?: string } = {},
  ) => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${tokenFor(init.as ?? (init.json as { project?: unknown } | undefined)?.project)}`,
      ...init.headers,
    };
    let body: string | FormData | undefined = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const r = await fetch(`${base}${path}`, { method, headers, body });
    const text = await r.text();
    return { status: r.status, text, body: (text && r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T };
  };
  /** A page of a shot's frames (`query` as in the URL: `?state=failed&limit=2`), as `as`'s key. */
  const framePage = (id: string, query = '', as?: string) => call<FramePage & ApiErrorBody>('GET', `/v1/shots/${id}/frames${query}`, { ...(as ? { as } : {}) });
  const framesOf = async (id: string) => (await framePage(id)).body.frames;
  const submitForm = (request: unknown, files: Parameters<typeof form>[1], headers: Record<string, string> = {}) =>
    call<SubmitView & ApiErrorBody>('POST', '/v1/shots', { body: form(request, files), headers, as: (request as { project?: string }).project });
  const jobCount = async () => {
    let n = 0;
    for (const q of Object.values(queues.queues)) n += Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
    return n;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-api-'));
    [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
    await buildAnalyticPack(join(dir, 'pack'));
    config = loadConfig({
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: BUCKET,
      PACK_DIR: join(dir, 'pack'),
      MAX_FRAMES: '8',
      HEARTBEAT_MS: '1000',
    });
    app = await createApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = await app.getUrl();
    base = base.replace('[::1]', '127.0.0.1');
    redis = new Redis(redisServer.url);
    const keys = new KeyStore(redis, prefix);
    for (const p of PROJECTS) tokens[p] = (await keys.create(p, 'api-test', ['submit', 'read', 'admin'])).token;
    store = new ShotStore(redis, prefix);
    queues = new FarmQueues({ connection: { host: '127.0.0.1', port: redisServer.port }, prefix, frameAttempts: 3 });
    objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    sketches = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(SIZE, SIZE, i, 2).image)));
    reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
  });

  after(async () => {
    await app?.close();
    await queues?.close();
    redis?.disconnect();
    objects?.destroy();
    await redisServer?.stop();
    await s3?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts a multipart shot of 2 frames: objects at their keys, records, prepare job', async () => {
    const r = await submitForm({ project: 'demo', settings: { mode: 'full', steps: 8, seed: 11 }, priority: 70 }, { reference, frames: sketches });
    assert.equal(r.status, 201, r.text);
    const shot = r.body;
    assert.equal(shot.state, 'queued');
    assert.equal(shot.frameCount, 2);
    assert.equal(shot.seed, 11);
    assert.equal(shot.priority, 70);
    // The settings resolved against the pack: what will be rendered, the frames' 64² size included.
    assert.deepEqual(
      [shot.settings.mode, shot.settings.steps, shot.settings.seed, shot.settings.width, shot.settings.height, shot.settings.sizeFrom, shot.settings.styleEnhance],
      ['full', 8, 11, SIZE, SIZE, 'frames', true],
    );
    assert.deepEqual((await framesOf(shot.id)).map((f) => [f.frame, f.state, f.seed, f.attempts]), [[1, 'waiting', 11, 0], [2, 'waiting', 12, 0]]);
    const keys = shotKeys('', 'demo', shot.id);
    assert.deepEqual(Buffer.from((await objects.get(keys.frameInput(1)))!), sketches[0]);
    assert.deepEqual(Buffer.from((await objects.get(keys.frameInput(2)))!), sketches[1]);
    assert.deepEqual(Buffer.from((await objects.get(keys.reference))!), reference);
    assert.equal(await objects.head(keys.background), null);
    const record = await store.get(shot.id);
    assert.equal(record?.inputs.frames[1], keys.frameInput(2));
    assert.equal(record?.pack.id, 'analytic');
    const job = await queues.queues.prepare.getJob(`${shot.id}-prepare`);
    assert.ok(job, 'prepare job enqueued');
    assert.deepEqual(job.data, { shotId: shot.id, project: 'demo' });
    const created = (await new EventBus(redis, prefix).recent('demo', 1000)).filter((e) => e.shotId === shot.id);
    assert.deepEqual(created.map((e) => [e.type, e.data]), [['shot.created', { name: shot.id, state: 'queued', frameCount: 2, priority: 70, awaitingUploads: false }]], 'announced once');
  });

  it('returns the first shot for a repeated Idempotency-Key and creates nothing more', async () => {
    const req = { project: 'demo', settings: { steps: 4 } };
    const headers = { 'Idempotency-Key': 'take-7' };
    const a = await submitForm(req, { reference, frames: sketches }, headers);
    const jobs = await jobCount();
    const b = await submitForm(req, { reference, frames: sketches }, headers);
    assert.equal(a.status, 201, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(b.body.id, a.body.id);
    assert.equal(b.body.seed, a.body.seed, 'the first shot, its random seed included');
    assert.equal(await jobCount(), jobs);
    const { shots } = await store.list({ project: 'demo', limit: 500 });
    assert.equal(shots.filter((s) => s.idempotencyKey === 'take-7').length, 1);
    // Same key, other project: a different shot.
    const c = await submitForm({ ...req, project: 'other' }, { reference, frames: sketches }, headers);
    assert.equal(c.status, 201);
    assert.notEqual(c.body.id, a.body.id);
  });

  it('refuses bad input with a 4xx naming the field, and stores and enqueues nothing', async () => {
    await objects.put('projects/bad/library/ref.png', reference, 'image/png');
    const jobs = await jobCount();
    const ok = { project: 'bad', settings: { steps: 4 } };
    const [f0, f1] = sketches as [Buffer, Buffer];
    const huge = pngClaiming(reference, 20000, 20000);
    const multipartCases: [string, unknown, Parameters<typeof form>[1], number, string][] = [
      ['corrupt PNG', ok, { reference, frames: [Buffer.concat([f0.subarray(0, 40), Buffer.from('garbage')])] }, 400, 'frames[0]'],
      ['text file as an image', ok, { reference, frames: [f0, Buffer.from('hello, I am a text file')] }, 400, 'frames[1]'],
      ['20000×20000 header', ok, { reference: huge, frames: [f0] }, 413, 'reference'],
      ['unknown mode', { ...ok, settings: { mode: 'sepia' } }, { reference, frames: [f0] }, 400, 'settings.mode'],
      ['steps out of range', { ...ok, settings: { steps: 500 } }, { reference, frames: [f0] }, 400, 'settings.steps'],
      ['unknown settings key', { ...ok, settings: { stepz: 4 } }, { reference, frames: [f0] }, 400, 'settings.stepz'],
      ['missing reference', ok, { frames: [f0, f1] }, 400, 'reference'],
      ['no frames', ok, { reference, frames: [] }, 400, 'frames'],
      ['too many frames', ok, { reference, frames: Array.from({ length: 9 }, () => f0) }, 400, 'frames'],
      ['priority out of range', { ...ok, priority: 101 }, { reference, frames: [f0] }, 400, 'priority'],
      ['project not a slug', { ...ok, project: 'Bad Project' }, { reference, frames: [f0] }, 400, 'project'],
      ['request not JSON', '{"project":', { reference, frames: [f0] }, 400, 'request'],
    ];
    for (const [what, req, files, status, field] of multipartCases) {
      const r = await submitForm(req, files);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.body.error.field, field, `${what}: ${r.text}`);
    }
    const ref = { key: 'projects/bad/library/ref.png' };
    const jsonCases: [string, unknown, number, string][] = [
      ['frame key outside the project', { ...ok, reference: ref, frames: { keys: ['projects/other/a.png'] } }, 400, 'frames.keys[0]'],
      ['reference key outside the project', { ...ok, reference: { key: 'elsewhere/ref.png' }, frames: { keys: [ref.key] } }, 400, 'reference.key'],
      ['".." in a key', { ...ok, reference: ref, frames: { keys: ['projects/bad/../other/a.png'] } }, 400, 'frames.keys[0]'],
      ['missing object', { ...ok, reference: ref, frames: { keys: [ref.key, 'projects/bad/nope.png'] } }, 400, 'frames.keys[1]'],
      ['empty prefix', { ...ok, reference: ref, frames: { prefix: 'projects/bad/empty/' } }, 400, 'frames.prefix'],
      ['missing reference (JSON)', { ...ok, frames: { keys: [ref.key] } }, 400, 'reference'],
      ['two frame styles', { ...ok, reference: ref, frames: { keys: [ref.key], upload: 2 } }, 400, 'frames'],
      ['unknown top-level key', { ...ok, reference: ref, frames: { keys: [ref.key] }, colour: 'red' }, 400, 'colour'],
      ['name too long', { ...ok, reference: ref, frames: { keys: [ref.key] }, name: 'x'.repeat(201) }, 400, 'name'],
      ['studio id with a space', { ...ok, reference: ref, frames: { keys: [ref.key] }, externalIds: { show: 'my show' } }, 400, 'externalIds.show'],
      ['unknown studio id', { ...ok, reference: ref, frames: { keys: [ref.key] }, externalIds: { episode: 'e1' } }, 400, 'externalIds.episode'],
      ['file names for a prefix', { ...ok, reference: ref, frames: { prefix: 'projects/bad/library/', fileNames: ['a.png'] } }, 400, 'frames.fileNames'],
      ['fewer file names than keys', { ...ok, reference: ref, frames: { keys: [ref.key, ref.key], fileNames: ['a.png'] } }, 400, 'frames.fileNames'],
      ['a file name with a path', { ...ok, reference: ref, frames: { upload: 1, fileNames: ['a/b.png'] } }, 400, 'frames.fileNames[0]'],
      ['two keys of one file name', { ...ok, reference: ref, frames: { keys: ['projects/bad/a/0001.png', 'projects/bad/b/0001.PNG'] } }, 400, 'frames.keys[1]'],
    ];
    for (const [what, body, status, field] of jsonCases) {
      const r = await call<ApiErrorBody>('POST', '/v1/shots', { json: body });
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.body.error.field ?? '', field, `${what}: ${r.text}`);
    }
    // Multipart is not held to the JSON body limit (8 MiB); a JSON body over it is a 413.
    const bigFrame = Buffer.concat([f0.subarray(0, 8), Buffer.alloc(12 * 1024 * 1024, 7)]);
    const big = await submitForm(ok, { reference, frames: [bigFrame] });
    assert.equal(big.status, 400, big.text);
    assert.deepEqual([big.body.error.code, big.body.error.field], ['INVALID_IMAGE', 'frames[0]']);
    const bigJson = await call<ApiErrorBody>('POST', '/v1/shots', { json: { ...ok, pad: 'x'.repeat(9 * 1024 * 1024) } });
    assert.equal(bigJson.status, 413, bigJson.text);
    const missing = await call<ApiErrorBody>('POST', '/v1/shots', { json: { ...ok, frames: { keys: [ref.key] } } });
    assert.equal(missing.body.error.message, 'reference: required');
    const badJson = await fetch(`${base}/v1/shots`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.bad}` },
      body: '{"project":',
    });
    assert.equal(badJson.status, 400);
    assert.ok(((await badJson.json()) as ApiErrorBody).error.code);

    assert.equal(await jobCount(), jobs, 'nothing enqueued');
    assert.deepEqual((await store.list({ project: 'bad' })).shots, [], 'no shot record');
    assert.deepEqual((await objects.list('projects/bad/shots/')).map((o) => o.key), [], 'no object stored');
  });

  it('runs the upload flow through the API (s3rver): 201 awaiting uploads, PUT with the key, start validates and enqueues', async () => {
    const r = await call('POST', '/v1/shots', { json: { project: 'demo', settings: { seed: 3 }, reference: { upload: true }, frames: { upload: 2 } } });
    assert.equal(r.status, 201, r.text);
    const shot = r.body;
    assert.equal(shot.state, 'queued');
    assert.equal(shot.awaitingUploads, true);
    const keys = shotKeys('', 'demo', shot.id);
    assert.deepEqual(shot.uploads!.map((u) => [u.field, u.key, u.method]), [
      ['reference', keys.reference, 'PUT'],
      ['frames[0]', keys.frameInput(1), 'PUT'],
      ['frames[1]', keys.frameInput(2), 'PUT'],
    ]);
    assert.equal(await queues.queues.prepare.getJob(`${shot.id}-prepare`), undefined, 'not enqueued before start');
    assert.deepEqual(shot.uploads!.map((u) => u.url), [
      `/v1/shots/${shot.id}/inputs/reference`,
      `/v1/shots/${shot.id}/frames/1/input`,
      `/v1/shots/${shot.id}/frames/2/input`,
    ]);
    const put = async (i: number, bytes: Uint8Array) => {
      const u = shot.uploads![i]!;
      const res = await fetch(`${base}${u.url}`, { method: 'PUT', headers: { ...u.headers, authorization: `Bearer ${tokens.demo}` }, body: bytes });
      assert.equal(res.status, 204, await res.text());
    };
    await put(0, reference);
    await put(1, sketches[0]!);
    const early = await call<ApiErrorBody>('POST', `/v1/shots/${shot.id}/start`);
    assert.equal(early.status, 400, early.text);
    assert.equal(early.body.error.field, 'frames[1]');
    await put(2, Buffer.from('not a png'));
    const corrupt = await call<ApiErrorBody>('POST', `/v1/shots/${shot.id}/start`);
    assert.equal(corrupt.status, 400, corrupt.text);
    assert.deepEqual([corrupt.body.error.code, corrupt.body.error.field], ['INVALID_IMAGE', 'frames[1]']);
    assert.equal(await queues.queues.prepare.getJob(`${shot.id}-prepare`), undefined);
    await put(2, sketches[1]!);
    const started = await call('POST', `/v1/shots/${shot.id}/start`);
    assert.equal(started.status, 200, started.text);
    assert.equal(started.body.awaitingUploads, false);
    assert.equal(started.body.state, 'queued');
    assert.ok(await queues.queues.prepare.getJob(`${shot.id}-prepare`), 'prepare job enqueued');
    const again = await call('POST', `/v1/shots/${shot.id}/start`);
    assert.equal(again.status, 200, 'start is idempotent');
    const late = await fetch(`${base}${shot.uploads![1]!.url}`, { method: 'PUT', headers: { 'content-type': 'image/png', authorization: `Bearer ${tokens.demo}` }, body: sketches[1] });
    assert.equal(late.status, 409, 'no uploads once started');
    assert.deepEqual(Buffer.from((await objects.get(keys.frameInput(1)))!), sketches[0], 'the started input is unchanged');
  });

  it('takes existing objects by keys and by prefix (images only, sorted)', async () => {
    const lib = 'projects/demo/library/seq1/';
    await objects.put(`${lib}0002.png`, sketches[1]!, 'image/png');
    await objects.put(`${lib}0001.png`, sketches[0]!, 'image/png');
    await objects.put(`${lib}notes.txt`, Buffer.from('not a frame'), 'text/plain');
    await objects.put('projects/demo/library/ref.png', reference, 'image/png');
    const byKeys = await call('POST', '/v1/shots', {
      json: { project: 'demo', reference: { key: 'projects/demo/library/ref.png' }, frames: { keys: [`${lib}0002.png`, `${lib}0001.png`] } },
    });
    assert.equal(byKeys.status, 201, byKeys.text);
    assert.deepEqual((await framesOf(byKeys.body.id)).map((f) => f.input), [`${lib}0002.png`, `${lib}0001.png`]);
    assert.ok(await queues.queues.prepare.getJob(`${byKeys.body.id}-prepare`));
    const byPrefix = await call('POST', '/v1/shots', {
      json: { project: 'demo', reference: { key: 'projects/demo/library/ref.png' }, frames: { prefix: lib } },
    });
    assert.equal(byPrefix.status, 201, byPrefix.text);
    assert.deepEqual((await framesOf(byPrefix.body.id)).map((f) => f.input), [`${lib}0001.png`, `${lib}0002.png`]);
    assert.equal(byPrefix.body.awaitingUploads, false);
    assert.ok(await queues.queues.prepare.getJob(`${byPrefix.body.id}-prepare`));
  });

  it('a cancelled re-render gives its frames back their earlier takes; an approval reaches shot.json at once', async () => {
    const { body: shot } = await submitForm({ project: 'demo', settings: { steps: 4, seed: 40 } }, { reference, frames: sketches });
    const keys = shotKeys(config.S3_PREFIX, 'demo', shot.id);
    // What two workers would leave: both frames completed, outputs written.
    const outputs = [Buffer.from('take 0 of frame 1'), Buffer.from('take 0 of frame 2')];
    await store.update(shot.id, { state: 'running' });
    for (const n of [1, 2]) {
      const f = (await store.frame(shot.id, n))!;
      await objects.put(keys.output(n, f.fileName), outputs[n - 1]!, 'image/png');
      await store.setFrame(shot.id, n, { state: 'active', worker: 'w1' });
      await store.setFrame(shot.id, n, { state: 'completed', output: keys.output(n, f.fileName), seconds: 1 });
    }
    await store.update(shot.id, { state: 'completed' });
    const before = await store.frames(shot.id);

    // Approve frame 2 on the finished shot: shot.json says so now, not after the next round.
    assert.equal((await call('POST', `/v1/shots/${shot.id}/frames/2/approve`)).status, 200);
    const manifest = JSON.parse(Buffer.from((await objects.get(keys.manifest))!).toString('utf8')) as { state: string; frames: { review?: { state: string } }[] };
    assert.deepEqual([manifest.state, manifest.frames.map((f) => f.review?.state)], ['completed', [undefined, 'approved']]);

    // Render both again, then cancel before any worker takes them.
    const again = await call('POST', `/v1/shots/${shot.id}/rerender`, { json: { frames: [1, 2], seed: 9 } });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual((await store.frames(shot.id)).map((f) => [f.state, f.seed, f.takes?.length]), [['waiting', 9, 1], ['waiting', 9, 1]]);
    assert.equal((await call('POST', `/v1/shots/${shot.id}/cancel`)).status, 200);
    const back = await store.frames(shot.id);
    assert.deepEqual(
      back.map((f) => [f.state, f.seed, f.take, f.takes, f.review?.state, f.seconds]),
      before.map((f, i) => ['completed', f.seed, 0, undefined, i === 1 ? 'approved' : undefined, 1]),
      'each frame is its earlier take again: seed, review and time',
    );
    for (const n of [1, 2]) {
      const out = await fetch(`${base}/v1/shots/${shot.id}/frames/${n}/output`, { headers: { authorization: `Bearer ${tokens.demo}` } });
      assert.equal(out.status, 200, `frame ${n}'s output is served`);
      assert.deepEqual(Buffer.from(await out.arrayBuffer()), outputs[n - 1], `frame ${n}: the earlier take's bytes`);
    }
    // A frame that never had a take is simply cancelled.
    const { body: fresh } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches.slice(0, 1) });
    await call('POST', `/v1/shots/${fresh.id}/cancel`);
    assert.deepEqual((await store.frames(fresh.id)).map((f) => f.state), ['cancelled']);
  });

  it('cancels: state, waiting frames and pending jobs; idempotent; 409 once finished', async () => {
    const { body: shot } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches });
    const r = await call('POST', `/v1/shots/${shot.id}/cancel`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.state, 'cancelled');
    assert.deepEqual((await store.frames(shot.id)).map((f) => f.state), ['cancelled', 'cancelled']);
    assert.equal(await queues.queues.prepare.getJob(`${shot.id}-prepare`), undefined, 'prepare job removed');
    const again = await call('POST', `/v1/shots/${shot.id}/cancel`);
    assert.equal(again.status, 200);
    assert.equal(again.body.state, 'cancelled');

    const { body: done } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches });
    await store.update(done.id, { state: 'running' });
    await store.update(done.id, { state: 'completed' });
    const late = await call<ApiErrorBody>('POST', `/v1/shots/${done.id}/cancel`);
    assert.equal(late.status, 409, late.text);
    assert.equal(late.body.error.code, 'STATE_CONFLICT');
    assert.equal((await store.get(done.id))?.state, 'completed');
  });

  it('retries failed frames as a new round; progress and output URLs in the view', async () => {
    const { body: shot } = await submitForm({ project: 'demo', settings: { steps: 4, seed: 40 } }, { reference, frames: sketches });
    const nothing = await call<ApiErrorBody>('POST', `/v1/shots/${shot.id}/retry`);
    assert.equal(nothing.status, 409, nothing.text);
    const keys = shotKeys('', 'demo', shot.id);
    await store.update(shot.id, { state: 'running' });
    await store.setFrame(shot.id, 1, { state: 'active', attempts: 1, worker: 'w1' });
    await store.setFrame(shot.id, 1, { state: 'completed', output: keys.output(1), seconds: 2 });
    await store.setFrame(shot.id, 2, { state: 'active', attempts: 1, worker: 'w2' });
    await store.setProgress(shot.id, 2, { stage: 'sample', step: 1, steps: 4 });
    const running = await call('GET', `/v1/shots/${shot.id}`);
    assert.equal(running.body.progress, (1 + 1 / 4) / 2);
    assert.deepEqual(running.body.counts, { waiting: 0, active: 1, completed: 1, failed: 0, cancelled: 0 });
    assert.deepEqual(running.body.active, [{ frame: 2, stage: 'sample', step: 1, steps: 4, worker: 'w2' }]);
    const [f1, f2] = await framesOf(shot.id);
    assert.equal(f1!.outputUrl, `/v1/shots/${shot.id}/frames/1/output`, 'served by the API (s3rver)');
    assert.equal(f2!.outputUrl, undefined);
    assert.equal(f2!.stage, 'sample');
    const early = await call<ApiErrorBody>('POST', `/v1/shots/${shot.id}/retry`);
    assert.equal(early.status, 409, 'nothing failed yet');

    await store.setFrame(shot.id, 2, { state: 'failed', attempts: 3, error: { code: 'RUNTIME', message: 'boom' } });
    await store.update(shot.id, { state: 'failed', error: { code: 'FRAMES_FAILED', message: '1 of 2 frames failed' } });
    assert.equal((await call('GET', `/v1/shots/${shot.id}`)).body.retryableFrames, 1, 'a runtime failure can be retried');
    const r = await call('POST', `/v1/shots/${shot.id}/retry`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.state, 'running');
    assert.equal(r.body.round, 1);
    assert.equal(r.body.retryableFrames, 0);
    const frame2 = (await store.frame(shot.id, 2))!;
    assert.deepEqual([frame2.state, frame2.attempts, frame2.error, frame2.seed], ['waiting', 3, undefined, 41]);
    assert.equal((await store.frame(shot.id, 1))!.state, 'completed');
    assert.ok(await queues.queues.shots.getJob(`${shot.id}-finalize-r1`), 'finalize of round 1');
    assert.ok(await queues.queues.frames.getJob(`${shot.id}-2-r1`), 'frame 2 of round 1');
    assert.equal(await queues.queues.frames.getJob(`${shot.id}-1-r1`), undefined, 'completed frames are not rerun');
    const twice = await call<ApiErrorBody>('POST', `/v1/shots/${shot.id}/retry`);
    assert.equal(twice.status, 409);
  });

  it('refuses to retry frames that failed for good (409 NOT_RETRYABLE, nothing queued) and retries only the others', async () => {
    const invalid = { code: 'INVALID_IMAGE', field: 'frames[1]', message: 'frames[1]: not a PNG, JPEG or WebP image', permanent: true };
    const finish = async (id: string, outcomes: Partial<FrameRecord>[]) => {
      await store.update(id, { state: 'running' });
      for (const [i, o] of outcomes.entries()) {
        await store.setFrame(id, i + 1, { state: 'active', attempts: 1, worker: 'w1' });
        await store.setFrame(id, i + 1, o);
      }
      await store.update(id, { state: 'failed', error: { code: 'FRAMES_FAILED', message: 'frames failed' } });
    };

    // Only a permanent failure left: nothing a retry could fix.
    const { body: bad } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches });
    await finish(bad.id, [{ state: 'completed', output: shotKeys('', 'demo', bad.id).output(1) }, { state: 'failed', error: invalid }]);
    const badView = await call('GET', `/v1/shots/${bad.id}`);
    assert.deepEqual([badView.body.counts.failed, badView.body.retryableFrames], [1, 0], 'one failed, none retryable');
    const jobs = await jobCount();
    const refused = await call<ApiErrorBody>('POST', `/v1/shots/${bad.id}/retry`);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error.code, 'NOT_RETRYABLE');
    assert.match(refused.body.error.message, /frame 2 INVALID_IMAGE \(frames\[1\]\): .*not a PNG/);
    assert.match(refused.body.error.message, /a retry cannot fix/);
    assert.equal(await jobCount(), jobs, 'nothing queued');
    const after = (await store.get(bad.id))!;
    assert.deepEqual([after.state, after.round], ['failed', 0]);
    assert.deepEqual((await store.frame(bad.id, 2))!.error, invalid, 'the frame keeps its failure');

    // A permanent failure and a lost worker: only the frame that lost its worker runs again.
    const { body: mixed } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches });
    await finish(mixed.id, [{ state: 'failed', error: invalid }, { state: 'failed', error: { code: 'WORKER_LOST', message: 'the frame lost its worker' } }]);
    assert.deepEqual((await call('GET', `/v1/shots/${mixed.id}`)).body.retryableFrames, 1);
    const r = await call('POST', `/v1/shots/${mixed.id}/retry`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.body.state, r.body.round], ['running', 1]);
    assert.deepEqual((await store.frames(mixed.id)).map((f) => [f.state, f.error?.code]), [['failed', 'INVALID_IMAGE'], ['waiting', undefined]]);
    assert.ok(await queues.queues.frames.getJob(`${mixed.id}-2-r1`), 'frame 2 of round 1');
    assert.equal(await queues.queues.frames.getJob(`${mixed.id}-1-r1`), undefined, 'the permanent failure is not rerun');
    const started = (await new EventBus(redis, prefix).recent('demo', 1000)).find((e) => e.shotId === mixed.id && e.type === 'shot.started');
    assert.deepEqual(started?.data, { name: mixed.id, state: 'running', round: 1, frames: [2], notRetried: [1] });
  });

  it("pages a shot's frames in frame order, by state, with the URLs of their images; the view keeps counts and active frames only", async () => {
    const lib = 'projects/demo/library/paged/';
    const names = [1, 2, 3, 4, 5].map((n) => `${lib}${String(n).padStart(4, '0')}.png`);
    for (const [i, key] of names.entries()) await objects.put(key, sketches[i % 2]!, 'image/png');
    await objects.put(`${lib}ref.png`, reference, 'image/png');
    const r = await call('POST', '/v1/shots', { json: { project: 'demo', settings: { steps: 4 }, reference: { key: `${lib}ref.png` }, frames: { keys: names } } });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id;
    const keys = shotKeys('', 'demo', id);
    await store.update(id, { state: 'running' });
    for (const f of [2, 4, 5]) await store.setFrame(id, f, { state: 'active', attempts: 1, worker: 'w1' });
    await store.setFrame(id, 2, { state: 'completed', output: keys.output(2), seconds: 1 });
    await store.setFrame(id, 4, { state: 'failed', error: { code: 'RUNTIME', message: 'boom' } });
    await store.setProgress(id, 5, { stage: 'sample', step: 3, steps: 4 });

    // The view: counts, progress and the active frame; no frame list, however long the shot.
    const view = await call<Record<string, unknown>>('GET', `/v1/shots/${id}`);
    assert.equal(view.status, 200, view.text);
    assert.equal('frames' in view.body, false, 'no per-frame array in the shot view');
    assert.deepEqual(view.body.counts, { waiting: 2, active: 1, completed: 1, failed: 1, cancelled: 0 });
    assert.deepEqual(view.body.active, [{ frame: 5, stage: 'sample', step: 3, steps: 4, worker: 'w1' }]);
    assert.equal('frames' in r.body, false, 'nor in the submit answer');

    // Pages in frame order; `next` until the last one.
    const p1 = await framePage(id, '?limit=2');
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual([p1.body.frames.map((f) => f.frame), p1.body.next], [[1, 2], '2']);
    const p2 = await framePage(id, `?limit=2&cursor=${p1.body.next}`);
    assert.deepEqual([p2.body.frames.map((f) => f.frame), p2.body.next], [[3, 4], '4']);
    const p3 = await framePage(id, `?limit=2&cursor=${p2.body.next}`);
    assert.deepEqual([p3.body.frames.map((f) => f.frame), p3.body.next], [[5], null]);
    const all = await framePage(id);
    assert.deepEqual([all.body.frames.length, all.body.next], [5, null], 'the default page holds them all');

    // One or more states, comma-separated or repeated.
    const pick = async (query: string) => (await framePage(id, query)).body.frames.map((f) => [f.frame, f.state]);
    assert.deepEqual(await pick('?state=failed,active'), [[4, 'failed'], [5, 'active']]);
    assert.deepEqual(await pick('?state=completed&state=failed'), [[2, 'completed'], [4, 'failed']]);
    assert.deepEqual(await pick('?state=waiting&limit=1'), [[1, 'waiting']]);
    assert.deepEqual(await pick('?state=waiting&cursor=1'), [[3, 'waiting']]);
    assert.deepEqual(await pick('?state=cancelled'), []);

    // URLs of the images that exist: every sketch; output and preview of the completed frame only.
    const [f1, f2, , f4, f5] = all.body.frames;
    assert.deepEqual([f2!.inputUrl, f2!.outputUrl, f2!.previewUrl], [`/v1/shots/${id}/frames/2/input`, `/v1/shots/${id}/frames/2/output`, `/v1/shots/${id}/frames/2/preview`]);
    assert.deepEqual([f1!.inputUrl, f1!.outputUrl, f1!.previewUrl], [`/v1/shots/${id}/frames/1/input`, undefined, undefined]);
    assert.deepEqual([f4!.error?.code, f4!.outputUrl], ['RUNTIME', undefined]);
    assert.deepEqual([f5!.stage, f5!.step, f5!.steps, f5!.worker, f5!.input], ['sample', 3, 4, 'w1', names[4]]);

    // A bad query names its parameter; another project's shot does not exist.
    for (const [query, field] of [['?limit=501', 'limit'], ['?limit=0', 'limit'], ['?state=done', 'state[0]'], ['?cursor=abc', 'cursor'], ['?page=2', 'page']] as const) {
      const bad = await framePage(id, query);
      assert.equal(bad.status, 400, `${query}: ${bad.text}`);
      assert.equal(bad.body.error.field, field, query);
    }
    const elsewhere = await framePage(id, '', 'other');
    assert.equal(elsewhere.status, 404, elsewhere.text);
    assert.equal((await framePage('no-such-shot')).status, 404);
  });

  it('lists the frames shot QA flagged (?flagged=true), counts them in the view and shows each frame its scores', async () => {
    const r = await call('POST', '/v1/shots', { json: { project: 'demo', reference: { upload: true }, frames: { upload: 3 } } });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id;
    const thresholds = { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 };
    const qa = (lineFidelity: number, flagged: ('lineFidelity' | 'palette')[]) => ({
      scores: { palette: 1.5, flickerMean: null, flickerShare: null, lineFidelity },
      flickerMeasuredShare: null,
      thresholds,
      flagged,
    });
    for (const [frame, q] of [[1, qa(0.95, [])], [2, qa(0.1, ['lineFidelity'])], [3, null]] as const) {
      await store.setFrame(id, frame, { state: 'active', attempts: 1, worker: 'w1' });
      await store.setFrame(id, frame, { state: 'completed', output: `out/${frame}.png`, seconds: 1, ...(q ? { qa: q } : {}) });
    }
    const view = await call<Record<string, unknown>>('GET', `/v1/shots/${id}`);
    assert.equal(view.body.flagged, 1, 'the shot view counts flagged frames');

    const flagged = await framePage(id, '?flagged=true');
    assert.equal(flagged.status, 200, flagged.text);
    assert.deepEqual(flagged.body.frames.map((f) => [f.frame, f.qa?.flagged]), [[2, ['lineFidelity']]]);
    assert.deepEqual(flagged.body.frames[0]!.qa, qa(0.1, ['lineFidelity']), 'scores, thresholds and reasons as recorded');
    assert.deepEqual((await framePage(id, '?flagged=false')).body.frames.map((f) => f.frame), [1, 3], 'the others: passed, or not scored');
    assert.deepEqual((await framePage(id, '?flagged=true&state=failed')).body.frames, []);
    assert.equal((await framePage(id)).body.frames[2]!.qa, undefined, 'a frame without scores has no qa');
    const bad = await framePage(id, '?flagged=yes');
    assert.deepEqual([bad.status, bad.body.error?.field], [400, 'flagged'], bad.text);
  });

  it('lists newest first in pages, filters by state, refuses a bad state name', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call('POST', '/v1/shots', { json: { project: 'paging', reference: { upload: true }, frames: { upload: 1 } } });
      assert.equal(r.status, 201, r.text);
      ids.push(r.body.id);
    }
    await call('POST', `/v1/shots/${ids[0]}/cancel`, { as: 'paging' });
    const p1 = await call<ShotList>('GET', '/v1/shots?project=paging&limit=2', { as: 'paging' });
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual(p1.body.shots.map((s) => s.id), [ids[2], ids[1]]);
    assert.ok(p1.body.next);
    const p2 = await call<ShotList>('GET', `/v1/shots?limit=2&before=${p1.body.next}`, { as: 'paging' });
    assert.deepEqual(p2.body.shots.map((s) => s.id), [ids[0]]);
    assert.equal(p2.body.next, null);
    const cancelled = await call<ShotList>('GET', '/v1/shots?project=paging&state=cancelled', { as: 'paging' });
    assert.deepEqual(cancelled.body.shots.map((s) => s.id), [ids[0]]);
    const bad = await call<ApiErrorBody>('GET', '/v1/shots?state=finished');
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.field, 'state');
    // A search: unnamed shots are named by their ids, and found by them.
    const found = await call<ShotList>('GET', `/v1/shots?q=${ids[1]!.toUpperCase()}`, { as: 'paging' });
    assert.deepEqual(found.body.shots.map((s) => [s.id, s.name]), [[ids[1], ids[1]]]);
    const empty = await call<ApiErrorBody>('GET', '/v1/shots?q=%20', { as: 'paging' });
    assert.deepEqual([empty.status, empty.body.error.field], [400, 'q']);
  });

  it('deletes a shot: cancelled, objects and records gone; 404 afterwards', async () => {
    const { body: shot } = await submitForm({ project: 'demo', settings: { steps: 4 } }, { reference, frames: sketches });
    const keys = shotKeys('', 'demo', shot.id);
    assert.equal((await objects.list(`${keys.root}/`)).length, 3);
    const r = await call('DELETE', `/v1/shots/${shot.id}`);
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await objects.list(`${keys.root}/`), []);
    assert.equal(await store.get(shot.id), null);
    assert.equal(await queues.queues.prepare.getJob(`${shot.id}-prepare`), undefined);
    const gone = await call<ApiErrorBody>('GET', `/v1/shots/${shot.id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'NOT_FOUND');
    assert.equal((await call('DELETE', `/v1/shots/${shot.id}`)).status, 404);
    assert.equal((await call<ApiErrorBody>('POST', '/v1/shots/nosuchshot/cancel')).status, 404);
  });

  it('lists live workers only', async () => {
    const now = new Date().toISOString();
    const w = { host: 'gpu-1', pid: 42, provider: 'cuda:0', pack: 'analytic@1.0.0', startedAt: now, currentJob: null, framesDone: 3 };
    await store.heartbeat({ ...w, id: 'live-1', lastSeen: now });
    await store.heartbeat({ ...w, id: 'stale-1', lastSeen: new Date(Date.now() - 60_000).toISOString() });
    const r = await call<{ workers: { id: string; host: string; provider: string; currentJob: string | null; lastSeen: string }[] }>('GET', '/v1/workers');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.workers.map((x) => [x.id, x.host, x.provider, x.currentJob, x.lastSeen]), [['live-1', 'gpu-1', 'cuda:0', null, now]]);
  });

  it('serves metrics with route patterns and queue depths, and the OpenAPI document', async () => {
    await call('GET', '/v1/shots/does-not-exist');
    const m = await call<string>('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.body, /celfarm_http_request_duration_seconds_count\{[^}]*route="\/v1\/shots\/:id"[^}]*status="404"/);
    assert.doesNotMatch(m.body, /route="\/v1\/shots\/does-not-exist"/);
    assert.match(m.body, /celfarm_queue_jobs\{[^}]*queue="prepare"/);
    assert.match(m.body, /celfarm_shots_submitted_total\{[^}]*\} [1-9]/);
    const doc = await call<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('GET', '/docs/json');
    assert.equal(doc.status, 200);
    assert.match(doc.body.openapi, /^3\./);
    assert.ok(doc.body.paths['/v1/shots']?.post, 'POST /v1/shots documented');
    assert.ok(doc.body.paths['/v1/shots/{id}']?.get);
    assert.ok(doc.body.paths['/v1/workers']?.get);
    const ui = await call<string>('GET', '/docs');
    assert.equal(ui.status, 200);
    assert.match(ui.body, /swagger-ui/);
    assert.equal((await fetch(`${base}/docs/assets/swagger-ui-bundle.js`)).status, 200);
  });

  it('reports health, and readiness that names S3 once it is down', async () => {
    assert.deepEqual((await call('GET', '/healthz')).body, { status: 'ok' });
    const ready = await call('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    await s3.stop();
    const down = await call<ApiErrorBody & { checks: Record<string, { status: string }> }>('GET', '/readyz');
    assert.equal(down.status, 503, down.text);
    assert.match(down.body.error.message, /s3/);
    assert.deepEqual([down.body.checks.redis!.status, down.body.checks.s3!.status], ['up', 'down']);
  });
});
