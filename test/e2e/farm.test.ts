/**
 * The farm end to end on one machine: real redis-server, s3rver, the API and two worker
 * processes. Asserts what a studio sees: frames colorized with the reference's colours, nothing
 * lost or doubled when a worker dies mid-frame, cancellation, idempotent submits, clear 4xx errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startRedis, startS3 } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { authed, createApiKey, shotForm, shotFrames, startFarm, unfinishedFrames, waitForShot, whileHeld, type Farm, type ShotView } from '../harness.ts';

const SIZE = 128;

async function pngs(frames: number, size = SIZE) {
  const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(size, size, i, frames).image)));
  const reference = await encodePng(halfImage(size, size, COLOURS.red, COLOURS.grey));
  return { sketches, reference, circles: Array.from({ length: frames }, (_, i) => sketchFrame(size, size, i, frames).circle) };
}

/** A pixel of an output: the view's URL is a path on the API (s3rver), read with the suite's key. */
async function pixel(url: string, x: number, y: number): Promise<number[]> {
  const res = await fetch(new URL(url, apiUrl), { headers: authed(token) });
  assert.equal(res.status, 200, `GET ${url}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const i = (Math.round(y) * info.width + Math.round(x)) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

/** The API key (project demo, every scope) the suite calls the API with. */
let token: string;
let apiUrl: string;

/** Polls the shot as the suite's key until `done`. */
const wait = (id: string, done: (s: ShotView) => boolean, timeoutMs = 60_000) => waitForShot(apiUrl, id, done, timeoutMs, token);

/** Every frame of the shot, from its pages; `unfinished` says which frames are not done and why. */
const framesOf = (id: string) => shotFrames(apiUrl, id, token);
const unfinished = (id: string) => unfinishedFrames(apiUrl, id, token);

async function submit(farm: Farm, request: Record<string, unknown>, files: Parameters<typeof shotForm>[1], headers: Record<string, string> = {}) {
  const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', body: shotForm(request, files), headers: authed(token, headers) });
  return { status: r.status, body: (await r.json()) as ShotView & { error?: { code: string; field?: string; message: string } } };
}

describe('celfarm end to end', () => {
  let farm: Farm;
  let store: S3ObjectStore;
  before(async () => {
    farm = await startFarm({ workers: 2 });
    token = await createApiKey(farm, 'demo');
    apiUrl = farm.apiUrl;
    store = new S3ObjectStore({
      endpoint: farm.s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true,
    });
  });
  after(async () => {
    store?.destroy();
    await farm?.stop();
  });

  it('colorizes a 4-frame shot with the reference colours on two workers', async () => {
    const { sketches, reference, circles } = await pngs(4);
    const { status, body } = await submit(
      farm,
      { project: 'demo', settings: { mode: 'background', steps: 8, guidanceScale: 1, seed: 5, width: SIZE, height: SIZE } },
      { reference, frames: sketches },
    );
    assert.equal(status, 201, JSON.stringify(body));
    const shot = await wait(body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    const frames = await framesOf(body.id);
    assert.deepEqual(frames.map((f) => f.state), ['completed', 'completed', 'completed', 'completed']);
    for (const [i, f] of frames.entries()) {
      assert.ok(f.outputUrl, `frame ${f.frame} has an output URL`);
      const inside = await pixel(f.outputUrl!, circles[i]!.cx, circles[i]!.cy);
      const corner = await pixel(f.outputUrl!, 6, 6);
      // Foreground takes the reference's red, background its grey (0.2 → 153).
      assert.ok(inside[0]! > 240 && inside[1]! < 15 && inside[2]! < 15, `frame ${f.frame} inside ${inside}`);
      assert.ok(corner.every((v) => Math.abs(v - 153) <= 3), `frame ${f.frame} corner ${corner}`);
    }
    const outputs = await store.list(shotKeys('', 'demo', body.id).outputsPrefix);
    // One PNG per frame, and its small WebP preview under outputs/previews/.
    assert.deepEqual(outputs.map((o) => o.key.split('/').slice(-2).join('/')), [
      'outputs/00001.png', 'outputs/00002.png', 'outputs/00003.png', 'outputs/00004.png',
      'previews/00001.webp', 'previews/00002.webp', 'previews/00003.webp', 'previews/00004.webp',
    ]);
    const preview = await sharp(Buffer.from((await store.get(shotKeys('', 'demo', body.id).preview(1)))!)).metadata();
    assert.deepEqual([preview.format, preview.width, preview.height], ['webp', SIZE, SIZE]);
    const manifest = JSON.parse(Buffer.from((await store.get(shotKeys('', 'demo', body.id).manifest))!).toString('utf8'));
    assert.deepEqual(manifest.frames.map((f: { seed: number }) => f.seed), [5, 6, 7, 8]);
  });

  it('scores every frame on two workers and lists the one past a threshold (?flagged=true), in the view and the metrics', async () => {
    const qaToken = await createApiKey(farm, 'qa');
    // Lines of 6 px the analytic pack keeps; lines of 2 px it loses (it inks whole latent cells).
    const [bold, thin] = await Promise.all([6, 2].map((stroke) => encodePng(sketchFrame(SIZE, SIZE, 1, 3, stroke).image)));
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      body: shotForm({ project: 'qa', settings: { mode: 'vanilla', steps: 4, seed: 3, width: SIZE, height: SIZE } }, { reference, frames: [bold!, bold!, bold!, thin!] }),
      headers: authed(qaToken),
    });
    const { id } = (await r.json()) as ShotView;
    assert.equal(r.status, 201);
    const shot = await waitForShot(apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, qaToken);
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    assert.equal(shot.flagged, 1, 'the view counts the flagged frame');

    // Frames finish on either worker, in any order: each pair is scored by the later of the two.
    const frames = await shotFrames(apiUrl, id, qaToken);
    assert.deepEqual(frames.slice(0, 3).map((f) => f.qa?.scores.flickerMean), [null, 0, 0], 'the same drawing, the same colours');
    assert.equal(typeof frames[3]!.qa?.scores.flickerMean, 'number', 'flicker of the last pair');
    assert.deepEqual(frames.map((f) => f.qa?.flagged), [[], [], [], ['lineFidelity']]);
    const page = await fetch(`${apiUrl}/v1/shots/${id}/frames?flagged=true`, { headers: authed(qaToken) });
    assert.deepEqual(((await page.json()) as { frames: { frame: number }[] }).frames.map((f) => f.frame), [4]);

    let counted = 0;
    for (const w of farm.workers) {
      const m = /celfarm_frames_flagged_total\{[^}]*project="qa"[^}]*reason="lineFidelity"[^}]*\} (\d+)/.exec(await (await fetch(w.metricsUrl!)).text());
      counted += Number(m?.[1] ?? 0);
    }
    assert.equal(counted, 1, 'counted once, on the worker that flagged it');
  });

  it('reviews a shot: project and shot thresholds, needs-review list, approve, re-render with another seed keeping the take', async () => {
    const key = await createApiKey(farm, 'review');
    const call = async <T,>(method: string, path: string, body?: unknown) => {
      const r = await fetch(`${apiUrl}${path}`, {
        method,
        headers: authed(key, body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, body: (await r.json()) as T & { error?: { code: string; field?: string; message: string } } };
    };
    // The project's thresholds: set, read back with what applies, a bad one named.
    const bad = await call('PUT', '/v1/qa/thresholds', { palette: 400 });
    assert.deepEqual([bad.status, bad.body.error?.field], [400, 'palette'], JSON.stringify(bad.body));
    const unknown = await call('PUT', '/v1/qa/thresholds', { hue: 3 });
    assert.deepEqual([unknown.status, unknown.body.error?.field], [400, 'hue'], JSON.stringify(unknown.body));
    const set = await call<{ project: object; effective: Record<string, number> }>('PUT', '/v1/qa/thresholds', { palette: 40 });
    assert.equal(set.status, 200);
    assert.deepEqual(set.body.effective, { palette: 40, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 });

    const [bold, thin] = await Promise.all([6, 2].map((stroke) => encodePng(sketchFrame(SIZE, SIZE, 1, 3, stroke).image)));
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${apiUrl}/v1/shots`, {
      method: 'POST',
      body: shotForm(
        { project: 'review', settings: { mode: 'vanilla', steps: 4, seed: 3, width: SIZE, height: SIZE }, qa: { thresholds: { flickerMean: 3 } } },
        { reference, frames: [bold!, bold!, bold!, thin!] },
      ),
      headers: authed(key),
    });
    const { id } = (await r.json()) as ShotView;
    assert.equal(r.status, 201);
    let shot = await waitForShot(apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, key);
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    // The shot is judged by request over project over the defaults, on every worker.
    assert.deepEqual(shot.qaThresholds, { palette: 40, flickerMean: 3, flickerShare: 0.05, lineFidelity: 0.8 });
    let frames = await shotFrames(apiUrl, id, key);
    assert.deepEqual(frames.map((f) => [f.qa?.thresholds.palette, f.qa?.thresholds.lineFidelity]), Array(4).fill([40, 0.8]));
    assert.deepEqual([shot.flagged, shot.needsReview], [1, 1]);
    const needed = await call<{ frames: { frame: number; needsReview: boolean }[] }>('GET', `/v1/shots/${id}/frames?review=needed`);
    assert.deepEqual(needed.body.frames.map((f) => [f.frame, f.needsReview]), [[4, true]]);

    // Approve the flagged frame: it no longer needs review; its flags stay.
    const approved = await call<{ frame: number; needsReview: boolean; review?: { state: string; by?: string }; qa?: { flagged: string[] } }>('POST', `/v1/shots/${id}/frames/4/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.deepEqual([approved.body.frame, approved.body.needsReview, approved.body.review?.state, approved.body.qa?.flagged], [4, false, 'approved', ['lineFidelity']]);
    assert.match(approved.body.review?.by ?? '', /^key_/);
    assert.equal((await call<ShotView>('GET', `/v1/shots/${id}`)).body.needsReview, 0);
    assert.deepEqual((await call<{ frames: { frame: number }[] }>('GET', `/v1/shots/${id}/frames?review=approved`)).body.frames.map((f) => f.frame), [4]);
    assert.equal((await call('POST', `/v1/shots/${id}/frames/9/approve`)).status, 404);
    const one = await call<{ frame: number; review?: { state: string } }>('GET', `/v1/shots/${id}/frames/4`);
    assert.deepEqual([one.status, one.body.frame, one.body.review?.state], [200, 4, 'approved']);
    const none = await call('GET', `/v1/shots/${id}/frames/5`);
    assert.deepEqual([none.status, none.body.error?.field], [404, 'frame']);
    assert.equal((await call('GET', `/v1/shots/${id}/frames/0`)).body.error?.field, 'frame');

    // Render frame 3 again with seed 77: the shot runs again for it, its first take is kept.
    // The workers are held (SIGSTOP) while a second re-render is tried, so the first cannot have
    // finished by then however slow the machine.
    const before3 = frames[2]!;
    await whileHeld(farm.workers, async () => {
      const again = await call<ShotView>('POST', `/v1/shots/${id}/frames/3/rerender`, { seed: 77 });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual([again.body.state, again.body.round], ['running', 1]);
      const busy = await call('POST', `/v1/shots/${id}/frames/2/rerender`, {});
      assert.deepEqual([busy.status, busy.body.error?.code], [409, 'STATE_CONFLICT'], 'one re-render at a time: the shot runs');
      const badSeed = await call('POST', `/v1/shots/${id}/frames/2/rerender`, { seed: -4 });
      assert.deepEqual([badSeed.status, badSeed.body.error?.field], [400, 'seed']);
    });
    shot = await waitForShot(apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, key);
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    frames = await shotFrames(apiUrl, id, key);
    const f3 = frames[2]!;
    assert.deepEqual([f3.state, f3.seed, f3.takes?.map((t) => [t.round, t.seed])], ['completed', 77, [[0, before3.seed]]]);
    assert.deepEqual(f3.takes?.[0]?.qa, before3.qa, 'the take keeps its scores');
    const takeImage = await fetch(new URL(f3.takes![0]!.outputUrl!, apiUrl), { headers: authed(key) });
    assert.equal(takeImage.status, 200, 'the earlier take stays readable');
    assert.equal((await sharp(Buffer.from(await takeImage.arrayBuffer())).metadata()).width, SIZE);
    assert.notEqual(f3.outputUrl, before3.outputUrl, "the new take's URL differs (caches)");
    // Frame 4's flicker was measured against the old take: scored again, against the new one.
    assert.equal(typeof frames[3]!.qa?.scores.flickerMean, 'number');
    assert.equal(typeof f3.qa?.scores.flickerMean, 'number');
    assert.equal(frames[3]!.review?.state, 'approved', 'the approval of another frame stays');
    const manifest = JSON.parse(Buffer.from((await store.get(shotKeys('', 'review', id).manifest))!).toString('utf8'));
    assert.deepEqual(manifest.frames[2].takes.map((t: { seed: number }) => t.seed), [before3.seed]);
    assert.equal(manifest.frames[2].seed, 77);

    // Several frames in one round; a bad list is refused before anything changes.
    const missing = await call('POST', `/v1/shots/${id}/rerender`, { frames: [1, 9] });
    assert.deepEqual([missing.status, missing.body.error?.field], [404, 'frame']);
    const empty = await call('POST', `/v1/shots/${id}/rerender`, { frames: [] });
    assert.deepEqual([empty.status, empty.body.error?.field], [400, 'frames']);
    assert.equal((await call<ShotView>('GET', `/v1/shots/${id}`)).body.round, 1, 'nothing changed');
    const both = await call<ShotView>('POST', `/v1/shots/${id}/rerender`, { frames: [2, 1, 2], seed: 5 });
    assert.deepEqual([both.status, both.body.round], [200, 2], JSON.stringify(both.body));
    shot = await waitForShot(apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, key);
    frames = await shotFrames(apiUrl, id, key);
    assert.deepEqual(frames.map((f) => [f.seed, f.takes?.length ?? 0]), [[5, 1], [5, 1], [77, 1], [frames[3]!.seed, 0]]);
  });

  it('keeps a shot consistent on request: shared noise, palette locked to the reference, then to an approved frame', async () => {
    const { sketches, reference, circles } = await pngs(3);
    const { status, body } = await submit(
      farm,
      {
        project: 'demo',
        settings: { mode: 'vanilla', steps: 4, seed: 11, width: SIZE, height: SIZE },
        consistency: { sharedNoise: true, paletteLock: 'reference' },
      },
      { reference, frames: sketches },
    );
    assert.equal(status, 201, JSON.stringify(body));
    assert.deepEqual(body.consistency, { sharedNoise: true, paletteLock: 'reference', referenceChain: 'off' });
    let shot = await wait(body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    let frames = await framesOf(body.id);
    assert.deepEqual(frames.map((f) => f.seed), [11, 11, 11], 'every frame from the shot seed');
    for (const [i, f] of frames.entries()) {
      const inside = await pixel(f.outputUrl!, circles[i]!.cx, circles[i]!.cy);
      assert.ok(inside[0]! > 240 && inside[1]! < 15 && inside[2]! < 15, `frame ${f.frame} still the reference red: ${inside}`);
    }
    const manifest = JSON.parse(Buffer.from((await store.get(shotKeys('', 'demo', body.id).manifest))!).toString('utf8'));
    assert.deepEqual(manifest.consistency, { sharedNoise: true, paletteLock: 'reference', referenceChain: 'off' });
    const bad = await submit(farm, { project: 'demo', consistency: { paletteLock: 'yes' } }, { reference, frames: sketches.slice(0, 1) });
    assert.deepEqual([bad.status, bad.body.error?.field], [400, 'consistency.paletteLock'], JSON.stringify(bad.body));

    // Locked to an approved frame and chained to it: approve frame 1, render frame 2 again.
    const locked = await submit(
      farm,
      {
        project: 'demo',
        settings: { mode: 'vanilla', steps: 4, seed: 12, width: SIZE, height: SIZE },
        consistency: { paletteLock: 'approved', referenceChain: 'approved' },
      },
      { reference, frames: sketches },
    );
    shot = await wait(locked.body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    const post = (path: string, json?: unknown) =>
      fetch(`${apiUrl}${path}`, { method: 'POST', headers: authed(token, { 'content-type': 'application/json' }), body: JSON.stringify(json ?? {}) });
    const contexts = async () => (await store.list('cache/reference-contexts/')).length;
    const contextsBefore = await contexts();
    assert.equal((await post(`/v1/shots/${locked.body.id}/frames/1/approve`)).status, 200);
    assert.equal((await post(`/v1/shots/${locked.body.id}/frames/2/rerender`, { seed: 99 })).status, 200);
    shot = await wait(locked.body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    frames = await framesOf(locked.body.id);
    assert.deepEqual([frames[1]!.seed, frames[1]!.takes?.length, frames[1]!.referenceFrom], [99, 1, { frame: 1, take: 0 }]);
    const inside = await pixel(frames[1]!.outputUrl!, circles[1]!.cx, circles[1]!.cy);
    assert.ok(inside[0]! > 240 && inside[1]! < 15 && inside[2]! < 15, `frame 2 locked to frame 1's red: ${inside}`);
    assert.equal(await contexts(), contextsBefore + 1, "frame 2 rendered from a context of frame 1's output: one chain link, encoded once");

    // Chained to the previous outputs in links of 2: frames 3 and 4 wait for frame 2, then render
    // from its output (one more context), on two workers.
    const chained = await submit(
      farm,
      {
        project: 'demo',
        settings: { mode: 'vanilla', steps: 4, seed: 13, width: SIZE, height: SIZE },
        consistency: { referenceChain: 'previous', chainLink: 2 },
      },
      { reference, frames: [...sketches, sketches[0]!] },
    );
    assert.equal(chained.status, 201, JSON.stringify(chained.body));
    assert.deepEqual(chained.body.consistency, { sharedNoise: false, paletteLock: 'off', referenceChain: 'previous', chainLink: 2 });
    const contextsChained = await contexts();
    shot = await wait(chained.body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    assert.equal(await contexts(), contextsChained + 1, "frames 3 and 4 rendered from frame 2's output: one link, one context");
    const links = (await framesOf(chained.body.id)).map((f) => f.referenceFrom ?? null);
    assert.deepEqual(links, [null, null, { frame: 2, take: 0 }, { frame: 2, take: 0 }], 'each take says what it rendered from');
    const badLink = await submit(farm, { project: 'demo', consistency: { chainLink: 2 } }, { reference, frames: sketches.slice(0, 1) });
    assert.deepEqual([badLink.status, badLink.body.error?.field], [400, 'consistency.chainLink'], JSON.stringify(badLink.body));
  });

  it('finishes every frame exactly once when a worker is killed mid-frame', async () => {
    const { sketches, reference } = await pngs(4, 512);
    const { body } = await submit(
      farm,
      { project: 'demo', settings: { mode: 'vanilla', steps: 100, seed: 9, width: 1024, height: 1024, batchSize: 2 } },
      { reference, frames: sketches },
    );
    // Wait until some frame is sampling, then kill -9 the worker that has it.
    const busy = await wait(body.id, (s) => s.active.some((f) => (f.step ?? 0) > 2 && !!f.worker), 60_000);
    const victimFrame = busy.active.find((f) => (f.step ?? 0) > 2 && !!f.worker)!;
    const victim = farm.workers.find((w) => w.name === victimFrame.worker)!;
    assert.ok(victim, `worker ${victimFrame.worker} is one of ours`);
    await victim.kill('SIGKILL');
    const done = await wait(body.id, (s) => s.state === 'completed' || s.state === 'failed', 120_000);
    assert.equal(done.state, 'completed', await unfinished(body.id));
    const again = (await framesOf(body.id)).find((f) => f.frame === victimFrame.frame)!;
    assert.notEqual(again.worker, victim.name, 'the killed frame completed on the other worker');
    assert.ok(again.attempts >= 2, `attempts ${again.attempts}`);
    const outputs = await store.list(shotKeys('', 'demo', body.id).outputsPrefix);
    assert.equal(outputs.filter((o) => o.key.endsWith('.png')).length, 4, outputs.map((o) => o.key).join(', '));
    assert.equal(outputs.filter((o) => o.key.endsWith('.webp')).length, 4, 'one preview per frame');
    // Bring the pool back to two workers for the next tests.
    farm.workers.splice(farm.workers.indexOf(victim), 1);
    await farm.startWorker(`${victim.name}-b`);
  });

  it('stops the rest of a shot when it is cancelled', async () => {
    const { sketches, reference } = await pngs(8, 512);
    const { body } = await submit(
      farm,
      { project: 'demo', settings: { mode: 'vanilla', steps: 100, seed: 1, width: 1024, height: 1024, batchSize: 2 } },
      { reference, frames: sketches },
    );
    await wait(body.id, (s) => s.active.some((f) => (f.step ?? 0) > 1), 60_000);
    const r = await fetch(`${farm.apiUrl}/v1/shots/${body.id}/cancel`, { method: 'POST', headers: authed(token) });
    assert.equal(r.status, 200);
    const cancelled = await wait(body.id, (s) => s.state === 'cancelled' && s.counts.active === 0 && s.counts.waiting === 0, 30_000);
    const completed = cancelled.counts.completed;
    assert.ok(completed < 8, `only some frames completed (${completed})`);
    await new Promise((res) => setTimeout(res, 1500));
    const later = await wait(body.id, () => true);
    assert.equal(later.counts.completed, completed, 'nothing ran after the cancel');
    const outputs = await store.list(shotKeys('', 'demo', body.id).outputsPrefix);
    assert.equal(outputs.filter((o) => o.key.endsWith('.png')).length, completed);
  });

  it('rides out a Redis restart and an S3 restart mid-shot without losing a frame', async () => {
    const { sketches, reference } = await pngs(4, 512);
    const { body } = await submit(
      farm,
      { project: 'demo', settings: { mode: 'vanilla', steps: 100, seed: 3, width: 1024, height: 1024, batchSize: 2 } },
      { reference, frames: sketches },
    );
    await wait(body.id, (s) => s.active.some((f) => (f.step ?? 0) > 1), 60_000);
    // Redis goes away for a second (AOF keeps the queue), then S3 does.
    const port = farm.redis.port;
    await farm.redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    farm.redis = await startRedis(join(farm.dir, 'redis'), port);
    await farm.s3.stop();
    await new Promise((r) => setTimeout(r, 1000));
    farm.s3 = await startS3(join(farm.dir, 's3'), 'celfarm', farm.s3.port);
    const done = await wait(body.id, (s) => s.state === 'completed' || s.state === 'failed', 120_000);
    assert.equal(done.state, 'completed', await unfinished(body.id));
    const outputs = await store.list(shotKeys('', 'demo', body.id).outputsPrefix);
    assert.equal(outputs.filter((o) => o.key.endsWith('.png')).length, 4);
  });

  it('returns the first shot for a repeated Idempotency-Key', async () => {
    const { sketches, reference } = await pngs(1);
    const req = { project: 'demo', settings: { steps: 4, width: SIZE, height: SIZE } };
    const a = await submit(farm, req, { reference, frames: sketches }, { 'Idempotency-Key': 'submit-42' });
    const b = await submit(farm, req, { reference, frames: sketches }, { 'Idempotency-Key': 'submit-42' });
    assert.equal(a.status, 201);
    assert.ok(b.status === 200 || b.status === 201, `second submit status ${b.status}`);
    assert.equal(b.body.id, a.body.id);
    const list = (await (await fetch(`${farm.apiUrl}/v1/shots?project=demo&limit=100`, { headers: authed(token) })).json()) as { shots: { id: string }[] };
    assert.equal(list.shots.filter((s) => s.id === a.body.id).length, 1);
  });

  it('refuses bad input with a 4xx naming the field, and keeps working', async () => {
    const { sketches, reference } = await pngs(1);
    const ok = { project: 'demo', settings: { steps: 4, width: SIZE, height: SIZE } };
    const huge = Buffer.from(reference);
    huge.writeUInt32BE(20000, 16);
    huge.writeUInt32BE(20000, 20); // IHDR width/height (CRC now wrong or right, either way refused)
    const cases: [string, Record<string, unknown>, Parameters<typeof shotForm>[1], RegExp][] = [
      ['corrupt PNG', ok, { reference, frames: [Buffer.from('\x89PNG\r\n\x1a\n garbage')] }, /frames\[0\]/],
      ['not an image', ok, { reference, frames: [Buffer.from('hello, I am a text file')] }, /frames\[0\]/],
      ['20000×20000', ok, { reference: huge, frames: sketches }, /reference/],
      ['unknown mode', { ...ok, settings: { mode: 'sepia' } }, { reference, frames: sketches }, /settings\.mode/],
      ['missing reference', ok, { frames: sketches }, /reference/],
    ];
    for (const [what, req, files, field] of cases) {
      const r = await submit(farm, req, files);
      assert.ok(r.status >= 400 && r.status < 500, `${what}: status ${r.status}`);
      assert.match(JSON.stringify(r.body), field, `${what}: ${JSON.stringify(r.body)}`);
    }
    const outside = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: authed(token, { 'content-type': 'application/json' }),
      body: JSON.stringify({ ...ok, reference: { key: 'projects/other/ref.png' }, frames: { keys: ['projects/other/a.png'] } }),
    });
    assert.ok(outside.status >= 400 && outside.status < 500, `outside project: ${outside.status}`);
    assert.match(await outside.text(), /reference|frames/);
    // Workers are unharmed: a good shot still completes.
    const good = await submit(farm, ok, { reference, frames: sketches });
    const done = await wait(good.body.id, (s) => s.state === 'completed' || s.state === 'failed');
    assert.equal(done.state, 'completed');
  });

  it("renders frames at their own size, fits or refuses an asked one, and says so in the view and shot.json", async () => {
    // 256² frames and no size asked: 256² outputs (the pack's default is 128²).
    const { sketches, reference } = await pngs(1, 256);
    const own = await submit(farm, { project: 'demo', settings: { steps: 2, seed: 8 } }, { reference, frames: sketches });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    // Asked 100 wide: the nearest multiple of 64, with a warning; 5000 or 1e12: refused, naming the field.
    const fitted = await submit(farm, { project: 'demo', settings: { steps: 2, seed: 8, width: 100, height: 128 } }, { reference, frames: sketches });
    assert.equal(fitted.status, 201, JSON.stringify(fitted.body));
    const warning = { code: 'SIZE_FITTED', field: 'settings.width', message: 'width 100 is not a multiple of 64; rendering 128' };
    assert.deepEqual(fitted.body.warnings, [warning]);
    for (const [settings, field] of [[{ width: 5000, height: 256 }, 'settings.width'], [{ width: 256, height: 1e12 }, 'settings.height']] as const) {
      const r = await submit(farm, { project: 'demo', settings }, { reference, frames: sketches });
      assert.deepEqual([r.status, r.body.error?.field], [400, field], JSON.stringify(r.body));
    }
    for (const [id, size, warnings] of [[own.body.id, 256, []], [fitted.body.id, 128, [warning]]] as const) {
      const done = await wait(id, (s) => s.state === 'completed' || s.state === 'failed');
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.deepEqual(done.warnings, warnings, 'GET /v1/shots/{id} keeps the warnings');
      const keys = shotKeys('', 'demo', id);
      const [output] = (await store.list(keys.outputsPrefix)).filter((o) => o.key.endsWith('.png'));
      const meta = await sharp(Buffer.from((await store.get(output!.key))!)).metadata();
      assert.deepEqual([meta.width, meta.height], [size, size]);
      const manifest = JSON.parse(Buffer.from((await store.get(keys.manifest))!).toString('utf8'));
      assert.deepEqual([manifest.settings.width, manifest.settings.height, manifest.warnings], [size, size, warnings], 'shot.json: what was rendered');
    }
  });

  it('serves Prometheus metrics that promtool accepts, on the API and on a worker', async () => {
    // The harness starts workers with WORKER_METRICS_PORT=0 and reads the address they print.
    assert.equal(new URL(farm.workers[0]!.metricsUrl!).hostname, '127.0.0.1', 'worker metrics on loopback by default');
    const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    assert.equal(promtool.status, 0, "promtool not found: install Debian's prometheus (`sudo apt-get install -y prometheus`; npm test does it as root)");
    for (const url of [`${farm.apiUrl}/metrics`, farm.workers[0]!.metricsUrl!]) {
      const text = await (await fetch(url)).text();
      assert.match(text, /celfarm_/);
      const file = join(farm.dir, 'metrics.txt');
      await writeFile(file, text);
      const r = spawnSync('sh', ['-c', `promtool check metrics < ${file}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool on ${url}: ${r.stdout}${r.stderr}`);
    }
    const worker = await (await fetch(farm.workers[0]!.metricsUrl!)).text();
    for (const name of ['celfarm_frame_stage_duration_seconds', 'celfarm_sampler_step_seconds', 'celfarm_frames_total', 'celfarm_frames_flagged_total', 'celfarm_worker_busy_seconds_total', 'celfarm_model_load_seconds']) {
      assert.match(worker, new RegExp(name));
    }
  });
});
