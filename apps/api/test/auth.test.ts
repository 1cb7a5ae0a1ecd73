/**
 * Projects, API keys and tenancy, against real redis-server and s3rver: what a key may see and
 * do over HTTP (and what another project's key may not), sessions, revocation, per-key rate
 * limits, the audit log and the admin command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@celfarm/config';
import { FarmQueues, ShotStore } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startRedis, startS3, type RunningRedis, type RunningS3 } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { KeyStore, type Scope } from '@celfarm/tenancy';
import type { ApiErrorBody, AuditPage, FramePage, ShotList, SubmitView } from '@celfarm/contract';
import { createApp } from '../src/app.ts';

interface Credentials {
  token?: string;
  cookie?: string;
  authorization?: string;
}
interface Answer<T> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

const BUCKET = 'celfarm';
const SIZE = 32;
const ROOT = resolve(import.meta.dirname, '../../..');

/** Every /v1 route, with a body where it takes one. `:id` is filled in per test. */
const ROUTES: [method: string, path: string, json?: unknown][] = [
  ['POST', '/v1/shots', { reference: { upload: true }, frames: { upload: 1 } }],
  ['GET', '/v1/shots'],
  ['GET', '/v1/shots/:id'],
  ['GET', '/v1/shots/:id/frames'],
  ['POST', '/v1/shots/:id/start'],
  ['POST', '/v1/shots/:id/cancel'],
  ['POST', '/v1/shots/:id/retry'],
  ['DELETE', '/v1/shots/:id'],
  ['GET', '/v1/shots/:id/frames/1/output'],
  ['GET', '/v1/shots/:id/inputs/reference'],
  ['PUT', '/v1/shots/:id/frames/1/input'],
  ['GET', '/v1/workers'],
  ['GET', '/v1/keys'],
  ['POST', '/v1/keys', { name: 'x', scopes: ['read'] }],
  ['DELETE', '/v1/keys/:id'],
  ['GET', '/v1/audit'],
  ['GET', '/v1/session'],
  ['GET', '/v1/live'],
  ['GET', '/v1/no-such-route'],
];

function admin(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'apps/api/src/admin.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('projects, API keys and tenancy', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let s3: RunningS3;
  let config: Config;
  let app: NestFastifyApplication;
  let base: string;
  let redis: Redis;
  let keys: KeyStore;
  let store: ShotStore;
  let queues: FarmQueues;
  let objects: S3ObjectStore;
  let reference: Buffer;
  let sketch: Buffer;
  const prefix = `auth${process.pid}`;

  const call = async <T = SubmitView>(method: string, path: string, creds: Credentials, init: { json?: unknown; body?: FormData; headers?: Record<string, string> } = {}): Promise<Answer<T>> => {
    const headers: Record<string, string> = { ...init.headers };
    if (creds.token) headers.authorization = `Bearer ${creds.token}`;
    if (creds.authorization) headers.authorization = creds.authorization;
    if (creds.cookie) headers.cookie = creds.cookie;
    let body: string | FormData | undefined = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const r = await fetch(`${base}${path}`, { method, headers, body });
    if (r.headers.get('content-type')?.startsWith('text/event-stream')) {
      await r.body?.cancel();
      return { status: r.status, headers: r.headers, text: '', body: undefined as T };
    }
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, body: (text && r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T };
  };
  const newKey = async (project: string, scopes: Scope[] = ['submit', 'read', 'admin'], name = 'test', rateLimit = 1000) =>
    keys.create(project, name, scopes, rateLimit);
  const submit = (token: string, request: Record<string, unknown>) => {
    const f = new FormData();
    f.append('request', JSON.stringify(request));
    f.append('reference', new Blob([reference], { type: 'image/png' }), 'reference.png');
    f.append('frames', new Blob([sketch], { type: 'image/png' }), '00001.png');
    return call<SubmitView & ApiErrorBody>('POST', '/v1/shots', { token }, { body: f });
  };
  const signIn = async (key: string): Promise<{ status: number; cookie: string; setCookie: string }> => {
    const r = await call('POST', '/v1/session', {}, { json: { key } });
    const setCookie = r.headers.get('set-cookie') ?? '';
    return { status: r.status, cookie: setCookie.split(';')[0]!, setCookie };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-auth-'));
    [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
    await buildAnalyticPack(join(dir, 'pack'));
    config = loadConfig({ REDIS_URL: redisServer.url, REDIS_PREFIX: prefix, S3_ENDPOINT: s3.endpoint, S3_BUCKET: BUCKET, PACK_DIR: join(dir, 'pack') });
    app = await createApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    redis = new Redis(redisServer.url);
    keys = new KeyStore(redis, prefix);
    store = new ShotStore(redis, prefix);
    queues = new FarmQueues({ connection: { host: '127.0.0.1', port: redisServer.port }, prefix, frameAttempts: 3 });
    objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    sketch = await encodePng(sketchFrame(SIZE, SIZE).image);
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

  it('refuses every /v1 route without valid credentials (401), stores nothing, and keeps probes and docs public', async () => {
    const { key } = await newKey('locked');
    const revoked = await newKey('locked');
    await keys.revoke('locked', revoked.key.id);
    const refused: Credentials[] = [
      {},
      { token: 'cf_not-a-real-key' },
      { token: revoked.token },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { cookie: 'celfarm_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    ];
    for (const creds of refused) {
      for (const [method, path, json] of ROUTES) {
        const r = await call<ApiErrorBody>(method, path.replace(':id', key.id), creds, json === undefined ? {} : { json: { ...(json as object) } });
        assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(creds)}: ${r.text}`);
        assert.equal(r.body.error.code, 'UNAUTHENTICATED');
        assert.ok(r.body.error.message);
      }
    }
    assert.deepEqual((await store.list({ limit: 500 })).shots, [], 'no shot was created');
    assert.equal((await keys.list('locked')).length, 2, 'no key was created');
    for (const path of ['/healthz', '/readyz', '/metrics', '/docs', '/docs/json']) {
      assert.equal((await call('GET', path, {})).status, 200, path);
    }
    assert.notEqual((await call('GET', '/', {})).status, 401, 'the dashboard files need no key');
    const doc = await call<{ components: { securitySchemes: Record<string, { type: string; scheme?: string }> }; paths: Record<string, Record<string, { security?: unknown[] }>> }>('GET', '/docs/json', {});
    assert.deepEqual([doc.body.components.securitySchemes.bearer?.type, doc.body.components.securitySchemes.bearer?.scheme], ['http', 'bearer']);
    assert.deepEqual(doc.body.paths['/healthz']?.get?.security, []);
    assert.deepEqual(doc.body.paths['/v1/session']?.post?.security, []);
  });

  it('needs the scope of each route: read for GETs, submit for changes to shots, admin for keys and audit', async () => {
    const read = (await newKey('scopes', ['read'])).token;
    const sub = (await newKey('scopes', ['submit'])).token;
    const adm = (await newKey('scopes', ['admin'])).token;
    const json = { reference: { upload: true }, frames: { upload: 1 } };
    const cases: [string, string, string, string, unknown?][] = [
      [read, 'POST', '/v1/shots', 'submit', json],
      [read, 'POST', '/v1/shots/s1/start', 'submit'],
      [read, 'POST', '/v1/shots/s1/cancel', 'submit'],
      [read, 'POST', '/v1/shots/s1/retry', 'submit'],
      [read, 'DELETE', '/v1/shots/s1', 'submit'],
      [read, 'PUT', '/v1/shots/s1/frames/1/input', 'submit'],
      [read, 'GET', '/v1/keys', 'admin'],
      [read, 'POST', '/v1/keys', 'admin', { name: 'x', scopes: ['admin'] }],
      [read, 'DELETE', '/v1/keys/key_0', 'admin'],
      [read, 'GET', '/v1/audit', 'admin'],
      [sub, 'GET', '/v1/shots', 'read'],
      [sub, 'GET', '/v1/shots/s1', 'read'],
      [sub, 'GET', '/v1/shots/s1/frames', 'read'],
      [sub, 'GET', '/v1/shots/s1/frames/1/output', 'read'],
      [sub, 'GET', '/v1/workers', 'read'],
      [sub, 'GET', '/v1/live', 'read'],
      [adm, 'GET', '/v1/shots', 'read'],
      [adm, 'POST', '/v1/shots', 'submit', json],
    ];
    for (const [token, method, path, scope, body] of cases) {
      const r = await call<ApiErrorBody>(method, path, { token }, body === undefined ? {} : { json: body });
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.deepEqual([r.body.error.code, r.body.error.message], ['FORBIDDEN', `needs scope ${scope}`], `${method} ${path}`);
    }
    assert.deepEqual((await store.list({ project: 'scopes' })).shots, [], 'a refused submit stores nothing');
    assert.equal((await call('GET', '/v1/workers', { token: read })).status, 200);
    assert.equal((await call('GET', '/v1/shots', { token: read })).status, 200);
    assert.equal((await call('POST', '/v1/shots', { token: sub }, { json })).status, 201);
    assert.equal((await call('GET', '/v1/keys', { token: adm })).status, 200);
    for (const token of [read, sub, adm]) assert.equal((await call('GET', '/v1/session', { token })).status, 200, 'any key may ask who it is');
  });

  it("keeps a key to its own project on every route: another project's shots, outputs, uploads and keys stay out of reach", async () => {
    const a = await newKey('alpha');
    const b = await newKey('beta');
    const bRead = await newKey('beta', ['read']);
    // B: a shot with a completed frame (output URL), a failed one (retryable), one awaiting uploads.
    const done = (await submit(b.token, { project: 'beta', settings: { steps: 4 } })).body;
    const outKey = shotKeys('', 'beta', done.id).output(1);
    await objects.put(outKey, reference, 'image/png');
    await store.update(done.id, { state: 'running' });
    await store.setFrame(done.id, 1, { state: 'active', attempts: 1, worker: 'w1' });
    await store.setFrame(done.id, 1, { state: 'completed', output: outKey, seconds: 1 });
    await store.update(done.id, { state: 'completed' });
    const failed = (await submit(b.token, { settings: { steps: 4 } })).body;
    assert.equal(failed.project, 'beta', 'project defaults to the key’s');
    await store.update(failed.id, { state: 'running' });
    await store.setFrame(failed.id, 1, { state: 'failed', attempts: 3, error: { code: 'RUNTIME', message: 'boom' } });
    await store.update(failed.id, { state: 'failed' });
    const waiting = await call('POST', '/v1/shots', { token: b.token }, { json: { reference: { upload: true }, frames: { upload: 1 } }, headers: { 'Idempotency-Key': 'take-1' } });
    assert.equal(waiting.status, 201, waiting.text);
    assert.ok(waiting.body.uploads?.length);
    await objects.put('projects/beta/library/ref.png', reference, 'image/png');
    const bShots = [done.id, failed.id, waiting.body.id];
    const snapshot = async () =>
      Promise.all(bShots.map(async (id) => [await store.get(id), await store.frames(id), (await objects.list(`${shotKeys('', 'beta', id).root}/`)).map((o) => o.key)]));
    const jobsOfB = () => Promise.all(bShots.map(async (id) => (await queues.queues.prepare.getJob(`${id}-prepare`))?.id ?? null));
    const untouched = await snapshot();
    const bJobs = await jobsOfB();
    assert.deepEqual(bJobs, [`${done.id}-prepare`, `${failed.id}-prepare`, null]);

    const unknown = await call<ApiErrorBody>('GET', '/v1/shots/no-such-shot', { token: a.token });
    assert.equal(unknown.status, 404);
    for (const id of bShots) {
      for (const [method, path] of [['GET', ''], ['GET', '/frames'], ['POST', '/start'], ['POST', '/cancel'], ['POST', '/retry'], ['DELETE', '']] as const) {
        const r = await call<ApiErrorBody>(method, `/v1/shots/${id}${path}`, { token: a.token });
        assert.equal(r.status, 404, `${method} ${id}${path}: ${r.text}`);
        assert.equal(r.body.error.code, 'NOT_FOUND');
        assert.equal(r.body.error.message, `shot ${id} not found`, 'exactly as for a shot that does not exist');
      }
    }
    // Listing: only A's shots; naming B is refused.
    const mine = await submit(a.token, { project: 'alpha', settings: { steps: 4 } });
    assert.equal(mine.status, 201, mine.text);
    const list = await call<ShotList>('GET', '/v1/shots?limit=500', { token: a.token });
    assert.deepEqual(list.body.shots.map((s) => s.id), [mine.body.id]);
    const listB = await call<ApiErrorBody>('GET', '/v1/shots?project=beta', { token: a.token });
    assert.deepEqual([listB.status, listB.body.error.code, listB.body.error.field], [403, 'FORBIDDEN', 'project']);
    // Submitting into B, by name or through B's objects.
    const into = await submit(a.token, { project: 'beta', settings: { steps: 4 } });
    assert.deepEqual([into.status, into.body.error.code, into.body.error.field], [403, 'FORBIDDEN', 'project']);
    const intoJson = await call<ApiErrorBody>('POST', '/v1/shots', { token: a.token }, { json: { project: 'beta', reference: { upload: true }, frames: { upload: 1 } } });
    assert.deepEqual([intoJson.status, intoJson.body.error.field], [403, 'project']);
    const theirObjects = await call<ApiErrorBody>('POST', '/v1/shots', { token: a.token }, {
      json: { reference: { key: 'projects/beta/library/ref.png' }, frames: { keys: ['projects/beta/library/ref.png'] } },
    });
    assert.deepEqual([theirObjects.status, theirObjects.body.error.code, theirObjects.body.error.field], [400, 'KEY_OUTSIDE_PROJECT', 'reference.key']);
    // B's Idempotency-Key means nothing to A: a fresh shot of A's, no upload URL into B.
    const replay = await call('POST', '/v1/shots', { token: a.token }, { json: { reference: { upload: true }, frames: { upload: 1 } }, headers: { 'Idempotency-Key': 'take-1' } });
    assert.equal(replay.status, 201, replay.text);
    assert.notEqual(replay.body.id, waiting.body.id);
    assert.ok(replay.body.uploads!.every((u) => u.url.startsWith(`/v1/shots/${replay.body.id}/`)), 'uploads only into alpha’s own shot');
    const putIntoB = await fetch(`${base}${waiting.body.uploads![0]!.url}`, { method: 'PUT', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'image/png' }, body: sketch });
    assert.equal(putIntoB.status, 404, 'A cannot upload into B’s shot through its upload URL');
    // Keys and audit of B.
    const bKeys = await call<{ keys: { id: string }[] }>('GET', '/v1/keys', { token: a.token });
    assert.deepEqual(bKeys.body.keys.map((k) => k.id), [a.key.id]);
    assert.equal((await call('DELETE', `/v1/keys/${b.key.id}`, { token: a.token })).status, 404);
    const audit = await call<AuditPage>('GET', '/v1/audit?limit=1000', { token: a.token });
    assert.ok(audit.body.entries.length > 0);
    assert.ok(audit.body.entries.every((e) => e.keyId === a.key.id), 'only alpha’s own calls');

    // B is untouched, and still fully usable by its own keys.
    assert.deepEqual(await snapshot(), untouched);
    assert.deepEqual(await jobsOfB(), bJobs);
    assert.equal((await call('GET', '/v1/session', { token: b.token })).status, 200);
    const own = await call<FramePage>('GET', `/v1/shots/${done.id}/frames`, { token: bRead.token });
    assert.equal(own.status, 200);
    const outputUrl = own.body.frames[0]!.outputUrl!;
    assert.equal(outputUrl, `/v1/shots/${done.id}/frames/1/output`, 'B sees its output URL, on the API (s3rver checks no signatures)');
    const ownBytes = await fetch(`${base}${outputUrl}`, { headers: { authorization: `Bearer ${bRead.token}` } });
    assert.equal(ownBytes.status, 200);
    assert.deepEqual(Buffer.from(await ownBytes.arrayBuffer()), reference);
    const theirBytes = await call<ApiErrorBody>('GET', outputUrl, { token: a.token });
    assert.deepEqual([theirBytes.status, theirBytes.body.error.message], [404, `shot ${done.id} not found`], 'A cannot read B’s output');
    const aList = await call<ShotList>('GET', '/v1/shots', { token: a.token });
    assert.ok(!JSON.stringify(aList.body).includes('beta'), 'nothing of beta in anything alpha sees');
  });

  it('signs in with a key: HttpOnly session cookie that reads and acts as the key; signing out ends it', async () => {
    const k = await newKey('web', ['read', 'submit'], 'td', 1000);
    const bad = await signIn('cf_wrong');
    assert.equal(bad.status, 401);
    assert.equal(bad.setCookie, '');
    const s = await signIn(k.token);
    assert.equal(s.status, 204);
    assert.match(s.cookie, /^celfarm_session=[A-Za-z0-9_-]{43}$/);
    const attrs = s.setCookie.split(';').map((p) => p.trim().toLowerCase());
    for (const a of ['httponly', 'samesite=strict', 'path=/', 'max-age=43200']) assert.ok(attrs.includes(a), `${a} in ${s.setCookie}`);
    const sid = s.cookie.split('=')[1]!;
    const ttl = await redis.ttl(`${prefix}:session:${createHash('sha256').update(sid).digest('hex')}`);
    assert.ok(ttl > 43000 && ttl <= 43200, `session TTL ${ttl}`);

    const who = await call('GET', '/v1/session', { cookie: s.cookie });
    assert.equal(who.status, 200, who.text);
    assert.deepEqual(who.body, { project: 'web', keyId: k.key.id, name: 'td', scopes: ['read', 'submit'] });
    assert.equal((await call('GET', '/v1/shots', { cookie: s.cookie })).status, 200);
    // The dashboard's own writes carry its origin (the CSRF rule; security.test.ts has the refusals).
    const created = await call('POST', '/v1/shots', { cookie: s.cookie }, { json: { reference: { upload: true }, frames: { upload: 1 } }, headers: { origin: base } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.project, 'web');
    assert.equal((await call('GET', '/v1/keys', { cookie: s.cookie })).status, 403, 'the key’s scopes, no more');

    const out = await call('DELETE', '/v1/session', { cookie: s.cookie }, { headers: { origin: base } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^celfarm_session=;.*Max-Age=0/);
    const ended = await call<ApiErrorBody>('GET', '/v1/shots', { cookie: s.cookie });
    assert.deepEqual([ended.status, ended.body.error.code], [401, 'UNAUTHENTICATED']);
    assert.equal((await call('DELETE', '/v1/session', {})).status, 204, 'signing out twice is fine');
    assert.equal((await call('GET', '/v1/shots', { token: k.token })).status, 200, 'the key itself still works');
  });

  it('revokes a key from its next request on, and ends its sessions', async () => {
    const adm = await newKey('rev', ['admin']);
    const k = await newKey('rev', ['read']);
    const s = await signIn(k.token);
    assert.equal((await call('GET', '/v1/shots', { token: k.token })).status, 200);
    assert.equal((await call('GET', '/v1/shots', { cookie: s.cookie })).status, 200);
    const r = await call('DELETE', `/v1/keys/${k.key.id}`, { token: adm.token });
    assert.equal(r.status, 204, r.text);
    for (const creds of [{ token: k.token }, { cookie: s.cookie }]) {
      const again = await call<ApiErrorBody>('GET', '/v1/shots', creds);
      assert.deepEqual([again.status, again.body.error.code], [401, 'UNAUTHENTICATED'], JSON.stringify(creds));
    }
    assert.equal((await signIn(k.token)).status, 401, 'no new session with a revoked key');
    assert.equal((await call('DELETE', `/v1/keys/${k.key.id}`, { token: adm.token })).status, 204, 'revoking twice is fine');
    assert.equal((await call('DELETE', '/v1/keys/key_unknown', { token: adm.token })).status, 404);
    const listed = await call<{ keys: { id: string; revokedAt?: string; token?: string }[] }>('GET', '/v1/keys', { token: adm.token });
    assert.ok(listed.body.keys.find((x) => x.id === k.key.id)?.revokedAt);
  });

  it('manages keys over HTTP: the token once at creation, never a token or hash in the list', async () => {
    const adm = await newKey('keys', ['admin']);
    const bad = await call<ApiErrorBody>('POST', '/v1/keys', { token: adm.token }, { json: { name: 'x', scopes: ['root'] } });
    assert.deepEqual([bad.status, bad.body.error.field], [400, 'scopes[0]']);
    const r = await call<{ id: string; name: string; scopes: string[]; createdAt: string; token: string; rateLimit?: number }>(
      'POST', '/v1/keys', { token: adm.token }, { json: { name: 'render node', scopes: ['submit', 'read'], rateLimit: 5 } });
    assert.equal(r.status, 201, r.text);
    assert.match(r.body.token, /^cf_/);
    assert.deepEqual([r.body.name, r.body.scopes, r.body.rateLimit], ['render node', ['submit', 'read'], 5]);
    const who = await call('GET', '/v1/session', { token: r.body.token });
    assert.deepEqual(who.body, { project: 'keys', keyId: r.body.id, name: 'render node', scopes: ['submit', 'read'] });
    const list = await call('GET', '/v1/keys', { token: adm.token });
    assert.ok(!list.text.includes(r.body.token) && !list.text.includes('cf_'), 'no token in the list');
    assert.ok(!list.text.includes(createHash('sha256').update(r.body.token).digest('hex')), 'no hash in the list');
    assert.match(list.text, new RegExp(r.body.id));
  });

  it('records every mutating call in the project’s audit log, refusals included, newest first', async () => {
    const adm = await newKey('aud', ['admin', 'submit', 'read'], 'ops');
    const reader = await newKey('aud', ['read'], 'viewer');
    const gone = await newKey('aud', ['submit'], 'old');
    await keys.revoke('aud', gone.key.id);
    const shot = await call('POST', '/v1/shots', { token: adm.token }, { json: { reference: { upload: true }, frames: { upload: 1 } } });
    assert.equal(shot.status, 201);
    await call('GET', `/v1/shots/${shot.body.id}`, { token: adm.token });
    await call('POST', `/v1/shots/${shot.body.id}/cancel`, { token: adm.token });
    await call('POST', '/v1/shots/nosuch/retry', { token: adm.token });
    await call('POST', `/v1/shots/${shot.body.id}/cancel`, { token: reader.token });
    await call('POST', '/v1/shots', { token: gone.token }, { json: { reference: { upload: true }, frames: { upload: 1 } } });
    await call('POST', '/v1/shots', { token: 'cf_nobody' }, { json: {} });
    const created = await call<{ id: string }>('POST', '/v1/keys', { token: adm.token }, { json: { name: 'ci', scopes: ['read'] } });

    const r = await call<AuditPage>('GET', '/v1/audit', { token: adm.token });
    assert.equal(r.status, 200, r.text);
    const rows = r.body.entries.map((e) => [e.keyId, e.keyName, e.method, e.route, e.status, e.target ?? null]);
    assert.deepEqual(rows, [
      [adm.key.id, 'ops', 'POST', '/v1/keys', 201, created.body.id],
      [gone.key.id, 'old', 'POST', '/v1/shots', 401, null],
      [reader.key.id, 'viewer', 'POST', '/v1/shots/:id/cancel', 403, shot.body.id],
      [adm.key.id, 'ops', 'POST', '/v1/shots/:id/retry', 404, 'nosuch'],
      [adm.key.id, 'ops', 'POST', '/v1/shots/:id/cancel', 200, shot.body.id],
      [adm.key.id, 'ops', 'POST', '/v1/shots', 201, shot.body.id],
    ]);
    assert.equal(r.body.entries[2]!.path, `/v1/shots/${shot.body.id}/cancel`);
    assert.ok(r.body.entries.every((e) => !Number.isNaN(Date.parse(e.at))));
    const page1 = await call<AuditPage>('GET', '/v1/audit?limit=4', { token: adm.token });
    const page2 = await call<AuditPage>('GET', `/v1/audit?limit=4&before=${page1.body.next}`, { token: adm.token });
    assert.deepEqual([...page1.body.entries, ...page2.body.entries].map((e) => e.id), r.body.entries.map((e) => e.id));
    assert.equal(page2.body.next, null);
  });

  it('bootstraps with the admin command: create → the token works, list, revoke → 401; webhook hosts', async () => {
    const env = { REDIS_URL: redisServer.url, REDIS_PREFIX: prefix };
    const created = await admin(['keys', 'create', '--project', 'boot', '--name', 'td', '--scopes', 'submit,read,admin'], env);
    assert.equal(created.code, 0, created.stderr);
    const lines = created.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, 'the token alone on stdout');
    const token = lines[0]!;
    assert.match(token, /^cf_[A-Za-z0-9_-]{43}$/);
    const who = await call<{ project: string; keyId: string; scopes: string[] }>('GET', '/v1/session', { token });
    assert.equal(who.status, 200, who.text);
    assert.deepEqual([who.body.project, who.body.scopes], ['boot', ['submit', 'read', 'admin']]);
    assert.equal((await call('GET', '/v1/shots', { token })).status, 200);

    const [listed, projects, usage, badScope] = await Promise.all([
      admin(['keys', 'list', '--project', 'boot'], env),
      admin(['projects', 'list'], env),
      admin(['keys', 'create', '--project', 'boot'], env),
      admin(['keys', 'create', '--project', 'boot', '--name', 'x', '--scopes', 'root'], env),
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${who.body.keyId}\ttd\tsubmit,read,admin\t.*\tlive$`, 'm'));
    assert.ok(!listed.stdout.includes(token));
    assert.match(projects.stdout, /^boot\t/m);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--name is required/);
    assert.equal(badScope.code, 2);

    const allow = await admin(['webhooks', 'allow', '--project', 'boot', '--host', '127.0.0.1:8765'], env);
    assert.equal(allow.code, 0, allow.stderr);
    assert.deepEqual((await keys.project('boot'))?.webhookAllowHosts, ['127.0.0.1:8765']);
    const disallow = await admin(['webhooks', 'disallow', '--project', 'boot', '--host', '127.0.0.1:8765'], env);
    assert.equal(disallow.code, 0, disallow.stderr);
    assert.deepEqual((await keys.project('boot'))?.webhookAllowHosts, []);
    assert.equal((await admin(['webhooks', 'allow', '--project', 'nosuchproject', '--host', 'a:1'], env)).code, 1);

    const revoked = await admin(['keys', 'revoke', '--project', 'boot', '--id', who.body.keyId], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await call('GET', '/v1/shots', { token })).status, 401);
    assert.equal((await admin(['keys', 'revoke', '--project', 'other', '--id', who.body.keyId], env)).code, 1, 'not a key of that project');
  });
});

describe('per-key rate limits', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let s3: RunningS3;
  let app: NestFastifyApplication;
  let base: string;
  let redis: Redis;
  let keys: KeyStore;
  const prefix = `rl${process.pid}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-rl-'));
    [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
    await buildAnalyticPack(join(dir, 'pack'));
    const config = loadConfig({
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: BUCKET,
      PACK_DIR: join(dir, 'pack'),
      RATE_LIMIT_BURST: '3',
    });
    app = await createApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    redis = new Redis(redisServer.url);
    keys = new KeyStore(redis, prefix);
  });

  after(async () => {
    await app?.close();
    redis?.disconnect();
    await redisServer?.stop();
    await s3?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 429 with Retry-After once a key has spent its burst; other keys and public routes go on', async () => {
    // 0.1 token/s: the fourth request is refused however slowly the first three are served.
    const slow = await keys.create('rl', 'slow', ['read'], 0.1);
    const other = await keys.create('rl', 'other', ['read']);
    const get = (token?: string, path = '/v1/workers') => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const r = await get(slow.token);
      statuses.push(r.status);
      if (r.status === 429) limited = r;
      else await r.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 429], 'a burst of 3, refilled at 0.1/s');
    const body = (await limited!.json()) as ApiErrorBody;
    assert.equal(body.error.code, 'RATE_LIMITED');
    const retryAfter = Number(limited!.headers.get('retry-after'));
    assert.ok(retryAfter >= 9 && retryAfter <= 10, `the next token is due in about 10 s (Retry-After: ${retryAfter})`);
    assert.equal((await get(other.token)).status, 200, 'another key has its own bucket');
    for (let i = 0; i < 10; i++) assert.equal((await get(undefined, '/healthz')).status, 200, 'probes are not limited');
  });
});
