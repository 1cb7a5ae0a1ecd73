/**
 * The API as a browser-facing service, against real redis-server and s3rver: security headers on
 * every kind of answer, the CSRF rule for session-cookie writes, a shot's images served through
 * the API when the store is the embedded s3rver (and presigned URLs when it is a real S3), and
 * the status labels of the HTTP metrics. /docs is also loaded in Chromium under its policy.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { loadConfig, type Config } from '@celfarm/config';
import { FarmQueues, ShotStore } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng, encodeWebpPreview } from '@celfarm/pipeline/image/codec';
import { freePort, startRedis, startS3, type RunningRedis, type RunningS3 } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { KeyStore } from '@celfarm/tenancy';
import type { ApiErrorBody, FramePage, SubmitView } from '@celfarm/contract';
import { createApp } from '../src/app.ts';

const BUCKET = 'celfarm';
const SIZE = 32;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A farm's API on real Redis and S3 with `env` on top of the test defaults. */
async function apiOn(redis: RunningRedis, s3: RunningS3, packDir: string, prefix: string, env: Record<string, string> = {}) {
  const config: Config = loadConfig({ REDIS_URL: redis.url, REDIS_PREFIX: prefix, S3_ENDPOINT: s3.endpoint, S3_BUCKET: BUCKET, PACK_DIR: packDir, ...env });
  const app: NestFastifyApplication = await createApp(config, { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}

function form(request: unknown, reference: Uint8Array, frames: Uint8Array[]): FormData {
  const f = new FormData();
  f.append('request', JSON.stringify(request));
  f.append('reference', new Blob([reference], { type: 'image/png' }), 'reference.png');
  frames.forEach((b, i) => f.append('frames', new Blob([b], { type: 'image/png' }), `${String(i + 1).padStart(5, '0')}.png`));
  return f;
}

describe('security: headers, CSRF, images through the API, metric labels', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let s3: RunningS3;
  let app: NestFastifyApplication;
  let base: string;
  let redis: Redis;
  let keys: KeyStore;
  let store: ShotStore;
  let queues: FarmQueues;
  let objects: S3ObjectStore;
  let reference: Buffer;
  let sketches: Buffer[];
  const prefix = `sec${process.pid}`;

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const signIn = async (token: string): Promise<string> => {
    const r = await fetch(`${base}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify({ key: token }) });
    assert.equal(r.status, 204, await r.text());
    return r.headers.get('set-cookie')!.split(';')[0]!;
  };
  const jobCount = async () => {
    let n = 0;
    for (const q of Object.values(queues.queues)) n += Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
    return n;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-sec-'));
    [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
    await buildAnalyticPack(join(dir, 'pack'));
    // A small burst, to show that a shot page's images do not spend it.
    ({ app, base } = await apiOn(redisServer, s3, join(dir, 'pack'), prefix, { RATE_LIMIT_BURST: '5', RATE_LIMIT_PER_SECOND: '0.5' }));
    redis = new Redis(redisServer.url);
    keys = new KeyStore(redis, prefix);
    store = new ShotStore(redis, prefix);
    queues = new FarmQueues({ connection: { host: '127.0.0.1', port: redisServer.port }, prefix, frameAttempts: 3 });
    objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    sketches = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(SIZE, SIZE, i, 2).image)));
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

  it('sends the security headers on the dashboard, /docs, /v1 (answers and refusals), probes and /metrics', async () => {
    const { token } = await keys.create('hdr', 'h', ['read'], 1000);
    const csp = (r: Response) => Object.fromEntries((r.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
    const answers: [string, Response][] = [
      ['dashboard', await get('/', { accept: 'text/html' })],
      ['dashboard deep link', await get('/shots/s1', { accept: 'text/html' })],
      ['docs', await get('/docs')],
      ['docs json', await get('/docs/json')],
      ['v1', await get('/v1/shots', bearer(token))],
      ['v1 refused', await get('/v1/shots')],
      ['v1 missing', await get('/v1/nothing', bearer(token))],
      ['healthz', await get('/healthz')],
      ['readyz', await get('/readyz')],
      ['metrics', await get('/metrics')],
    ];
    // Read whole: an answer left half-read holds its connection open and app.close() waits on it.
    await Promise.all(answers.map(([, r]) => r.arrayBuffer()));
    const live = new AbortController();
    answers.push(['live events', await fetch(`${base}/v1/live`, { headers: bearer(token), signal: live.signal })]);
    for (const [what, r] of answers) {
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', what);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', what);
      assert.equal(r.headers.get('referrer-policy'), 'same-origin', what);
      assert.equal(r.headers.get('strict-transport-security'), null, `${what}: no HSTS over plain http`);
      const policy = csp(r);
      assert.equal(policy['frame-ancestors'], "'none'", what);
      assert.equal(policy['script-src'], "'self'", `${what}: no inline or foreign scripts`);
      assert.equal(policy['connect-src'], "'self'", what);
      assert.equal(policy['img-src'], "'self' data:", `${what}: images from the API only (s3rver is not presigned)`);
      assert.equal(policy['object-src'], "'none'", what);
    }
    live.abort();
    assert.equal(answers[0]![1].status, 200);
    assert.match(answers[0]![1].headers.get('content-type') ?? '', /text\/html/);
    assert.deepEqual(answers.map(([, r]) => r.status).slice(4, 7), [200, 401, 404]);
    assert.equal(csp(answers[0]![1])['style-src'], "'self'", 'the dashboard needs no inline styles');
    assert.equal(csp(answers[2]![1])['style-src'], "'self' 'unsafe-inline'", 'Swagger UI sets style attributes');
  });

  it('renders /docs in Chromium under its policy, without a violation', async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium (\`sudo apt-get install -y chromium\`; npm test does it as root) or set CHROMIUM_PATH`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`${base}/docs`);
      await page.locator('.opblock-summary-path', { hasText: '/v1/shots/{id}/frames/{frame}/{file}' }).first().waitFor({ timeout: 15_000 });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  it('refuses cookie-session writes from a foreign origin (403, nothing created) and accepts its own; bearer keys are unaffected', async () => {
    const { token, key } = await keys.create('csrf', 'producer', ['submit', 'read', 'admin'], 1000);
    const cookie = await signIn(token);
    const submit = (headers: Record<string, string>) =>
      fetch(`${base}/v1/shots`, { method: 'POST', headers, body: form({ settings: { steps: 4 } }, reference, sketches) });
    const jobs = await jobCount();
    // Another port on the same host is another origin: SameSite=Strict lets the cookie ride along.
    const foreign = `http://127.0.0.1:${await freePort()}`;
    const refusals: [string, Record<string, string>][] = [
      ['foreign Origin', { cookie, origin: foreign }],
      ['foreign Referer', { cookie, referer: `${foreign}/attack.html` }],
      ['Origin: null', { cookie, origin: 'null' }],
      ['no Origin or Referer', { cookie }],
      ['foreign Origin, own Referer', { cookie, origin: foreign, referer: `${base}/` }],
    ];
    for (const [what, headers] of refusals) {
      const r = await submit(headers);
      const body = (await r.json()) as ApiErrorBody;
      assert.equal(r.status, 403, `${what}: ${JSON.stringify(body)}`);
      assert.deepEqual([body.error.code, body.error.field], ['CSRF_REJECTED', 'origin'], what);
    }
    assert.deepEqual((await store.list({ project: 'csrf', limit: 500 })).shots, [], 'no shot record');
    assert.deepEqual(await objects.list('projects/csrf/'), [], 'no object stored');
    assert.equal(await jobCount(), jobs, 'nothing enqueued');
    const audit = (await (await get('/v1/audit?limit=50', bearer(token))).json()) as { entries: { keyId: string; status: number; route: string }[] };
    assert.equal(audit.entries.filter((e) => e.status === 403 && e.route === '/v1/shots').length, refusals.length, 'each refusal is in the audit log');
    assert.ok(audit.entries.every((e) => e.keyId === key.id));

    const own = await submit({ cookie, origin: base });
    assert.equal(own.status, 201, await own.text());
    const byReferer = await submit({ cookie, referer: `${base}/shots` });
    assert.equal(byReferer.status, 201, 'a Referer of the API stands in for a missing Origin');
    const scripted = await submit({ ...bearer(token), origin: foreign });
    assert.equal(scripted.status, 201, 'a bearer key is not a browser credential: no Origin rule');
    assert.equal((await store.list({ project: 'csrf', limit: 500 })).shots.length, 3);

    // Signing in and out: a foreign page can do neither.
    const planted = await fetch(`${base}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: foreign }, body: JSON.stringify({ key: token }) });
    assert.equal(planted.status, 403);
    assert.equal(planted.headers.get('set-cookie'), null, 'no session planted');
    const out = await fetch(`${base}/v1/session`, { method: 'DELETE', headers: { cookie, origin: foreign } });
    assert.equal(out.status, 403);
    assert.equal((await get('/v1/session', { cookie })).status, 200, 'the session lives on');
    assert.equal((await fetch(`${base}/v1/session`, { method: 'DELETE', headers: { cookie, origin: base } })).status, 204);
  });

  it('serves a shot’s images through the API with the s3rver: with a key or session, 401 without, 404 for another project', async () => {
    const { token } = await keys.create('pics', 'td', ['submit', 'read'], 1000);
    const { token: other } = await keys.create('elsewhere', 'td', ['submit', 'read'], 1000);
    const r = await fetch(`${base}/v1/shots`, { method: 'POST', headers: bearer(token), body: form({ settings: { steps: 4 } }, reference, sketches) });
    const shot = (await r.json()) as SubmitView;
    assert.equal(r.status, 201, JSON.stringify(shot));
    // Frame 1 completed by a worker: its output and preview in the store, the record pointing at them.
    const k = shotKeys('', 'pics', shot.id);
    const output = await encodePng(halfImage(SIZE, SIZE, COLOURS.green, COLOURS.grey));
    const preview = await encodeWebpPreview(halfImage(SIZE, SIZE, COLOURS.green, COLOURS.grey));
    await objects.put(k.output(1), output, 'image/png');
    await objects.put(k.preview(1), preview, 'image/webp');
    await store.update(shot.id, { state: 'running' });
    await store.setFrame(shot.id, 1, { state: 'active', attempts: 1, worker: 'w1' });
    await store.setFrame(shot.id, 1, { state: 'completed', output: k.output(1), seconds: 1 });

    const page = (await (await get(`/v1/shots/${shot.id}/frames`, bearer(token))).json()) as FramePage;
    const [f1, f2] = page.frames;
    assert.deepEqual([f1!.inputUrl, f1!.outputUrl, f1!.previewUrl], [
      `/v1/shots/${shot.id}/frames/1/input`,
      `/v1/shots/${shot.id}/frames/1/output`,
      `/v1/shots/${shot.id}/frames/1/preview`,
    ]);
    assert.deepEqual([f2!.inputUrl, f2!.outputUrl], [`/v1/shots/${shot.id}/frames/2/input`, undefined]);
    assert.ok(!JSON.stringify(page).includes(s3.endpoint), 'no store URL handed out');

    const expect: [string, string, Buffer][] = [
      [f1!.outputUrl!, 'image/png', output],
      [f1!.previewUrl!, 'image/webp', preview],
      [f1!.inputUrl!, 'image/png', sketches[0]!],
      [f2!.inputUrl!, 'image/png', sketches[1]!],
      [`/v1/shots/${shot.id}/inputs/reference`, 'image/png', reference],
    ];
    for (const [url, type, bytes] of expect) {
      const res = await get(url, bearer(token));
      assert.equal(res.status, 200, url);
      assert.equal(res.headers.get('content-type'), type, url);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', url);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes, url);
    }
    const cookie = await signIn(token);
    const viaSession = await get(f1!.outputUrl!, { cookie });
    assert.equal(viaSession.status, 200, 'the dashboard’s <img> reads it with the session cookie');
    assert.deepEqual(Buffer.from(await viaSession.arrayBuffer()), output);

    const anonymous = await get(f1!.outputUrl!);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as ApiErrorBody).error.code, 'UNAUTHENTICATED');
    for (const url of [f1!.outputUrl!, f1!.inputUrl!, `/v1/shots/${shot.id}/inputs/reference`]) {
      const theirs = await get(url, bearer(other));
      assert.equal(theirs.status, 404, `another project's key: ${url}`);
      assert.equal(((await theirs.json()) as ApiErrorBody).error.message, `shot ${shot.id} not found`);
    }
    for (const url of [`/v1/shots/${shot.id}/frames/2/output`, `/v1/shots/${shot.id}/frames/3/input`, `/v1/shots/${shot.id}/inputs/background`, `/v1/shots/${shot.id}/frames/1/mask`]) {
      assert.equal((await get(url, bearer(token))).status, 404, url);
    }

    // A shot page's thumbnails and the flipbook's preloads spend no rate-limit tokens (burst 5 here).
    const { token: viewer } = await keys.create('pics', 'viewer', ['read']);
    for (let i = 0; i < 12; i++) {
      const res = await get(i % 2 ? f1!.previewUrl! : f1!.inputUrl!, bearer(viewer));
      assert.equal(res.status, 200, `image ${i}`);
      await res.arrayBuffer();
    }
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await get(`/v1/shots/${shot.id}`, bearer(viewer))).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429], 'the rest of the API keeps its limit');
  });

  it('counts GET /docs/json and /docs/yaml as the 200s they are in the HTTP metrics', async () => {
    const counts = async () => {
      const text = await (await get('/metrics')).text();
      return (route: string, status: string) => {
        const line = text.split('\n').find((l) => l.startsWith('celfarm_http_request_duration_seconds_count{') && l.includes(`route="${route}"`) && l.includes(`status="${status}"`));
        return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
      };
    };
    const before = await counts();
    for (const path of ['/docs/json', '/docs/yaml', '/docs/json']) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      await r.arrayBuffer();
    }
    const now = await counts();
    assert.equal(now('/docs/json', '200') - before('/docs/json', '200'), 2);
    assert.equal(now('/docs/yaml', '200') - before('/docs/yaml', '200'), 1);
    assert.equal(now('/docs/json', '500') + now('/docs/yaml', '500'), 0, 'no phantom 5xx');
  });

  it('with a real S3 (S3_PRESIGN=always) and behind TLS (PUBLIC_URL https): presigned URLs, their origin in img-src, HSTS', async () => {
    const publicUrl = 'https://farm.studio.example';
    const tls = await apiOn(redisServer, s3, join(dir, 'pack'), prefix, { S3_PRESIGN: 'always', PUBLIC_URL: publicUrl });
    try {
      const { token } = await keys.create('aws', 'td', ['submit', 'read'], 1000);
      const res = await fetch(`${tls.base}/v1/shots`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(token) },
        body: JSON.stringify({ reference: { upload: true }, frames: { upload: 1 } }),
      });
      const shot = (await res.json()) as SubmitView;
      assert.equal(res.status, 201, JSON.stringify(shot));
      assert.ok(shot.uploads!.every((u) => u.url.startsWith(`${s3.endpoint}/`) && u.url.includes('X-Amz-Signature=')), 'presigned PUTs, as before');
      assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
      assert.match(res.headers.get('content-security-policy') ?? '', new RegExp(`img-src 'self' data: ${s3.endpoint.replace(/[.]/g, '\\.')};`));
      // Behind a proxy that rewrites Host, the public origin is still the API's own.
      const cookie = (await fetch(`${tls.base}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: publicUrl }, body: JSON.stringify({ key: token }) }))
        .headers.get('set-cookie')!.split(';')[0]!;
      const cancel = await fetch(`${tls.base}/v1/shots/${shot.id}/cancel`, { method: 'POST', headers: { cookie, origin: publicUrl } });
      assert.equal(cancel.status, 200, await cancel.text());
    } finally {
      await tls.app.close();
    }
  });
});
