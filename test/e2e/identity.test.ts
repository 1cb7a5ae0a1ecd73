/**
 * What a studio calls things, end to end: a shot's name and studio ids and each frame's file name
 * survive the farm — in the frame pages, the output keys (named after the inputs), shot.json, the
 * events, the list search — and an error about a frame names its file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { ShotList } from '@celfarm/contract';
import { EventBus } from '@celfarm/jobs';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { authed, createApiKey, shotForm, shotFrames, startFarm, waitForShot, type Farm, type ShotView } from '../harness.ts';

const SIZE = 64;
const SETTINGS = { mode: 'vanilla', steps: 4, seed: 3, width: SIZE, height: SIZE };

interface ErrorBody {
  error: { code: string; field?: string; message: string };
}

describe('shot and frame identity', () => {
  let farm: Farm;
  let token: string;
  let objects: S3ObjectStore;
  let redis: Redis;
  let sketches: Uint8Array[];
  let reference: Uint8Array;

  const submit = async (request: Record<string, unknown>, files: Parameters<typeof shotForm>[1]) => {
    const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', body: shotForm(request, files), headers: authed(token) });
    return { status: r.status, body: (await r.json()) as ShotView & ErrorBody };
  };
  const submitJson = async (body: unknown) => {
    const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', body: JSON.stringify(body), headers: authed(token, { 'content-type': 'application/json' }) });
    return { status: r.status, body: (await r.json()) as ShotView & ErrorBody };
  };
  const search = async (q: string) => {
    const r = await fetch(`${farm.apiUrl}/v1/shots?${new URLSearchParams({ q })}`, { headers: authed(token) });
    assert.equal(r.status, 200, `GET /v1/shots?q=${q}`);
    return ((await r.json()) as ShotList).shots;
  };
  const finished = (id: string) => waitForShot(farm.apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, token);
  const eventsOf = async (id: string) => (await new EventBus(redis, farm.env.REDIS_PREFIX).recent('demo', 1000)).filter((e) => e.shotId === id);

  before(async () => {
    farm = await startFarm({ workers: 1 });
    token = await createApiKey(farm, 'demo');
    objects = new S3ObjectStore({ endpoint: farm.s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    redis = new Redis(farm.redis.url);
    sketches = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(SIZE, SIZE, i, 2).image)));
    reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
  });
  after(async () => {
    redis?.disconnect();
    objects?.destroy();
    await farm?.stop();
  });

  it('keeps the name, studio ids and file names: frame pages, outputs named after the inputs, shot.json, events, search', async () => {
    const externalIds = { show: 'MOON', sequence: 'sq020', shot: 'sh010' };
    const { status, body } = await submit(
      { settings: SETTINGS, name: 'Rooftop chase', externalIds },
      { reference, frames: sketches, frameNames: ['sh010_0001.png', 'sh010_0002.jpg'] },
    );
    assert.equal(status, 201, JSON.stringify(body));
    assert.deepEqual([body.name, body.externalIds], ['Rooftop chase', externalIds]);
    const done = await finished(body.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));

    // Each frame shows its file; its output is named after it (a PNG whatever the input).
    const keys = shotKeys('', 'demo', body.id);
    const frames = await shotFrames(farm.apiUrl, body.id, token);
    assert.deepEqual(
      frames.map((f) => [f.fileName, f.output]),
      [
        ['sh010_0001.png', `${keys.outputsPrefix}sh010_0001.png`],
        ['sh010_0002.jpg', `${keys.outputsPrefix}sh010_0002.png`],
      ],
    );
    const stored = (await objects.list(keys.outputsPrefix)).map((o) => o.key.slice(keys.outputsPrefix.length));
    assert.deepEqual(stored, ['previews/sh010_0001.webp', 'previews/sh010_0002.webp', 'sh010_0001.png', 'sh010_0002.png'].sort());
    for (const f of frames) {
      for (const url of [f.outputUrl, f.previewUrl]) {
        const r = await fetch(new URL(url!, farm.apiUrl), { headers: authed(token) });
        assert.equal(r.status, 200, `GET ${url}`);
        await r.body?.cancel();
      }
    }

    // shot.json: the name, the studio ids, and each input file with its output.
    const manifest = JSON.parse(Buffer.from((await objects.get(keys.manifest))!).toString('utf8')) as {
      name: string;
      externalIds: unknown;
      frames: { fileName: string; output: string }[];
    };
    assert.deepEqual([manifest.name, manifest.externalIds], ['Rooftop chase', externalIds]);
    assert.deepEqual(manifest.frames.map((f) => [f.fileName, f.output]), frames.map((f) => [f.fileName, f.output]));

    // Events carry them: shot.* the name and studio ids, frame.* the file name.
    const events = await eventsOf(body.id);
    for (const type of ['shot.created', 'shot.started', 'shot.completed']) {
      const e = events.find((x) => x.type === type);
      assert.deepEqual([e?.data.name, e?.data.externalIds], ['Rooftop chase', externalIds], type);
    }
    assert.deepEqual(
      events.filter((e) => e.type === 'frame.completed').map((e) => [e.frame, e.data.fileName]).sort(),
      [[1, 'sh010_0001.png'], [2, 'sh010_0002.jpg']],
    );

    // Found by name, studio id or id, whatever the case; the list shows the name.
    for (const q of ['rooftop', 'CHASE', 'sq020', 'moon', body.id]) {
      const found = await search(q);
      assert.deepEqual(found.map((s) => [s.id, s.name]), [[body.id, 'Rooftop chase']], `q=${q}`);
    }
    assert.deepEqual(await search('no such shot'), []);

    // Unnamed, a shot takes the name its frames share.
    const unnamed = await submit({ settings: SETTINGS }, { reference, frames: sketches, frameNames: ['sh020_0001.png', 'sh020_0002.png'] });
    assert.equal(unnamed.status, 201, JSON.stringify(unnamed.body));
    assert.equal(unnamed.body.name, 'sh020');
    assert.deepEqual((await search('sh020')).map((s) => s.id), [unnamed.body.id]);
    await finished(unnamed.body.id);
  });

  it('names the file of a bad frame, at submit and when a worker finds it, and refuses two frames of one output name', async () => {
    const [f0] = sketches as [Uint8Array];
    const garbage = Buffer.from('not an image, whatever the name says');
    const bad = await submit({ settings: SETTINGS }, { reference, frames: [f0, garbage], frameNames: ['sh030_0001.png', 'sh030_0002.png'] });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error.field, 'frames[1]');
    assert.match(bad.body.error.message, /^frames\[1\] \(sh030_0002\.png\): /);

    const twice = await submit({ settings: SETTINGS }, { reference, frames: [f0, f0], frameNames: ['sh030_0001.png', 'SH030_0001.jpg'] });
    assert.equal(twice.status, 400, JSON.stringify(twice.body));
    assert.deepEqual([twice.body.error.code, twice.body.error.field], ['DUPLICATE_FILE_NAME', 'frames[1]']);
    assert.match(twice.body.error.message, /frames\[1\] \(SH030_0001\.jpg\) and frames\[0\] \(sh030_0001\.png\) would both be written as outputs\/SH030_0001\.png/);

    const path = await submitJson({ settings: SETTINGS, reference: { upload: true }, frames: { upload: 1, fileNames: ['shots/sh030_0001.png'] } });
    assert.equal(path.status, 400, JSON.stringify(path.body));
    assert.equal(path.body.error.field, 'frames.fileNames[0]');

    // By key: the worker finds frame 2 is not an image and says which file it is.
    const lib = 'projects/demo/library/sq9';
    await objects.put(`${lib}/reference.png`, reference, 'image/png');
    await objects.put(`${lib}/0001.png`, f0, 'image/png');
    await objects.put(`${lib}/0002.png`, garbage, 'image/png');
    const byKeys = await submitJson({ settings: SETTINGS, reference: { key: `${lib}/reference.png` }, frames: { keys: [`${lib}/0001.png`, `${lib}/0002.png`] } });
    assert.equal(byKeys.status, 201, JSON.stringify(byKeys.body));
    assert.equal(byKeys.body.name, 'sq9', 'named after the folder of its frames');
    const failed = await finished(byKeys.body.id);
    assert.equal(failed.state, 'failed');
    const [one, two] = await shotFrames(farm.apiUrl, byKeys.body.id, token);
    assert.deepEqual([one?.fileName, one?.state, two?.fileName, two?.state], ['0001.png', 'completed', '0002.png', 'failed']);
    assert.equal(two?.error?.field, 'frames[1]');
    assert.match(two?.error?.message ?? '', /^frames\[1\] \(0002\.png\): /);
    const frameFailed = (await eventsOf(byKeys.body.id)).find((e) => e.type === 'frame.failed');
    assert.equal(frameFailed?.data.fileName, '0002.png');
  });
});
