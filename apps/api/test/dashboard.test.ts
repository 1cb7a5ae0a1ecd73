/**
 * The dashboard's server side without Redis: the SPA's files and deep links at `/`, the page that
 * says how to build it, `/v1` left to the API; and the live snapshot that `GET /v1/live` sends.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { digestOf, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
import { serveDashboard } from '../src/dashboard/static.ts';
import { isLive, liveShot } from '../src/live/snapshot.ts';
import { resolveSettings } from '@celfarm/pipeline/settings';

/** A pack's size rules, to resolve a shot's settings as the API stores them. */
const RULES = { id: 'analytic', version: '1.0.0', size: { multiple: 64, min: 64, max: 1024, default: 128 }, defaults: {}, graphs: {} };

@Module({})
class EmptyModule {}

async function appServing(dist: string): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(EmptyModule, new FastifyAdapter(), { logger: false });
  await serveDashboard(app, dist);
  await app.init();
  return app;
}

describe('dashboard files at /', () => {
  let dir: string;
  let dist: string;
  let app: NestFastifyApplication;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-dashboard-'));
    dist = join(dir, 'dist');
    app = await appServing(dist);
  });
  after(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (url: string, accept = 'text/html,*/*') => app.getHttpAdapter().getInstance().inject({ method: 'GET', url, headers: { accept } });

  it('says how to build the app while dist is missing', async () => {
    const r = await get('/');
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /text\/html/);
    assert.match(r.body, /npm run build -w @celfarm\/dashboard/);
    assert.equal((await get('/assets/app.js', '*/*')).statusCode, 404);
  });

  it('serves the build, deep links as index.html, and leaves /v1 and other files to the 404', async () => {
    await mkdir(join(dist, 'assets'), { recursive: true });
    await writeFile(join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
    await writeFile(join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'outside dist');

    const index = await get('/');
    assert.equal(index.statusCode, 200);
    assert.match(index.body, /id="root"/);
    assert.equal(index.headers['cache-control'], 'no-cache');

    const asset = await get('/assets/index-abc123.js', '*/*');
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.body, 'console.log(1)');
    assert.match(asset.headers['cache-control'] as string, /immutable/);

    const deep = await get('/shots/s123abc?x=1');
    assert.equal(deep.statusCode, 200);
    assert.match(deep.body, /id="root"/);

    assert.equal((await get('/v1/nothing-here')).statusCode, 404, '/v1 paths never get the app');
    assert.equal((await get('/missing.js', 'application/javascript')).statusCode, 404, 'a missing file that is not a page is a 404');
    for (const url of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const r = await get(url, '*/*');
      assert.notEqual(r.body, 'outside dist', url);
    }
  });
});

describe('live snapshot', () => {
  const shot = (patch: Partial<ShotRecord> = {}): ShotRecord => ({
    id: 'sabc12345',
    project: 'demo',
    state: 'running',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:10.000Z',
    settings: resolveSettings({ seed: 1 }, RULES).settings,
    warnings: [],
    seed: 1,
    priority: 50,
    pack: { id: 'analytic', version: '1.0.0' },
    frameCount: 4,
    inputs: { frames: ['a', 'b', 'c', 'd'], reference: 'r' },
    failedFrameShare: 0,
    awaitingUploads: false,
    round: 0,
    ...patch,
  });
  const frame = (n: number, patch: Partial<FrameRecord>): FrameRecord => ({ frame: n, state: 'waiting', attempts: 0, seed: n, ...patch });

  it('has one letter per frame and the sampler step of active frames', () => {
    const s = liveShot(
      shot(),
      digestOf([
        frame(1, { state: 'completed', seconds: 2, output: 'o1' }),
        frame(2, { state: 'active', stage: 'sample', step: 12, steps: 20, worker: 'w1' }),
        frame(3, { state: 'failed', error: { code: 'INVALID_IMAGE', message: 'bad' } }),
        frame(4, {}),
      ]),
      1,
    );
    assert.equal(s.frames, 'cafw');
    assert.deepEqual(s.active, [{ frame: 2, stage: 'sample', step: 12, steps: 20, worker: 'w1' }]);
    assert.equal(s.progress, (1 + 12 / 20) / 4);
    assert.deepEqual(s.counts, { waiting: 1, active: 1, completed: 1, failed: 1, cancelled: 0 });
    assert.ok(s.etaSeconds !== null && s.etaSeconds > 0);
  });

  it('keeps unfinished shots, and finished ones only for a while', () => {
    const at = Date.parse('2025-01-01T00:00:10.000Z');
    assert.equal(isLive(shot({ state: 'queued' }), at + 3_600_000, 30_000), true);
    assert.equal(isLive(shot({ state: 'completed' }), at + 5_000, 30_000), true);
    assert.equal(isLive(shot({ state: 'completed' }), at + 31_000, 30_000), false);
  });
});
