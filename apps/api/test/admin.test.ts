/**
 * The admin command (apps/api/src/admin.ts) as a newcomer meets it: with no Redis to reach it
 * says so in one line (the URL, what to do) instead of an ioredis trace; with REDIS_URL unset it
 * finds a running `npm run demo` through the connection file the demo writes, and ignores one
 * left behind by a demo that is gone.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { freePort, startRedis, writeFarmEnv, type RunningRedis } from '@celfarm/services';
import { KeyStore } from '@celfarm/tenancy';
import { digestOf, ShotStore, type ShotRecord } from '@celfarm/jobs';
import { resolveSettings } from '@celfarm/pipeline/settings';

const ROOT = resolve(import.meta.dirname, '../../..');

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

describe('admin command: reaching Redis', () => {
  let dir: string;
  let redisServer: RunningRedis;
  let redis: Redis;
  const prefix = `admin${process.pid}`;
  const project = `adm${process.pid}`;
  /** No REDIS_URL or REDIS_PREFIX from the outside: the demo file decides. */
  const unset = { REDIS_URL: '', REDIS_PREFIX: '' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-admin-'));
    redisServer = await startRedis(join(dir, 'redis'));
    redis = new Redis(redisServer.url);
    await new KeyStore(redis, prefix).create(project, 'seed', ['read']);
  });
  after(async () => {
    redis?.disconnect();
    await redisServer?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('says in one line that Redis cannot be reached, naming the URL and what to do', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const r = await admin(['projects', 'list'], { REDIS_URL: url, CELFARM_DEMO_ENV: join(dir, 'none.env') });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^cannot reach Redis at ${url} \\(connect ECONNREFUSED [^)]+\\): set REDIS_URL`));
    assert.match(lines[0]!, /npm run demo -- --keep/);
    assert.doesNotMatch(r.stderr, /\[ioredis\]|\n\s+at /);
  });

  it('uses the running demo\'s Redis when REDIS_URL is unset', async () => {
    const file = join(dir, 'farm.env');
    await writeFarmEnv(file, { REDIS_URL: redisServer.url, REDIS_PREFIX: prefix, CELFARM_KEY: 'cf_x', CELFARM_DEMO_PID: String(process.pid) }, ['a demo']);
    const listed = await admin(['projects', 'list'], { ...unset, CELFARM_DEMO_ENV: file });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${project}\\t`, 'm'));
    assert.match(listed.stderr, new RegExp(`using the running demo's Redis, ${redisServer.url} \\(from .*farm\\.env\\)`));

    const created = await admin(['keys', 'create', '--project', project, '--name', 'td', '--scopes', 'submit,read'], { ...unset, CELFARM_DEMO_ENV: file });
    assert.equal(created.code, 0, created.stderr);
    const keys = await new KeyStore(redis, prefix).list(project);
    assert.deepEqual(keys.map((k) => k.name).sort(), ['seed', 'td'], 'the key landed in the demo\'s Redis');
  });

  it('ignores a connection file whose demo is gone', async () => {
    const gone = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const file = join(dir, 'stale.env');
    await writeFarmEnv(file, { REDIS_URL: redisServer.url, REDIS_PREFIX: prefix, CELFARM_DEMO_PID: String(gone) });
    const r = await admin(['projects', 'list'], { ...unset, CELFARM_DEMO_ENV: file });
    assert.doesNotMatch(r.stderr, /using the running demo/);
    assert.doesNotMatch(r.stdout, new RegExp(project), 'the stale file\'s Redis was not used');
    // Without it the default (redis://127.0.0.1:6379) is tried, which this machine may or may not run.
    if (r.code !== 0) assert.match(r.stderr.trim(), new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:6379 .*; ignored .*stale\\.env \\(its demo, pid ${gone}, is no longer running\\)$`));
  });

  it('drops the tallies of shots created since a time, after a rolling upgrade; their views stay exact', async () => {
    const shots = new ShotStore(redis, prefix);
    const rules = { id: 'analytic', version: '1.0.0', size: { multiple: 64, min: 64, max: 1024, default: 128 }, defaults: {}, graphs: {} };
    const { settings } = resolveSettings({ mode: 'vanilla', seed: 7 }, rules, { frameSize: { width: 128, height: 128 } });
    const shot = (id: string, createdAt: string): ShotRecord => ({
      id, project, state: 'running', createdAt, updatedAt: createdAt, settings, warnings: [], seed: 7, priority: 0,
      pack: { id: 'analytic', version: '1.0.0' }, frameCount: 2, inputs: { frames: ['a', 'b'], reference: 'r' }, failedFrameShare: 0, awaitingUploads: false, round: 0,
    });
    const frames = [1, 2].map((frame) => ({ frame, state: 'waiting' as const, attempts: 0, seed: frame }));
    await shots.create(shot('adm-old', '2026-01-01T00:00:00.000Z'), frames);
    await shots.create(shot('adm-new', '2026-06-01T00:00:00.000Z'), frames);
    // A frame written as a farm from before the tally writes it: the record moves, the tally does not.
    await redis.hset(`${prefix}:shot:adm-new:frames`, '1', JSON.stringify({ ...frames[0], state: 'completed', seconds: 1 }));
    assert.notDeepEqual(await shots.digest('adm-new', 2), digestOf(await shots.frames('adm-new'), 2), 'the stale tally shows');

    const env = { REDIS_URL: redisServer.url, REDIS_PREFIX: prefix };
    assert.equal((await admin(['shots', 'drop-tallies'], env)).code, 2, 'a time or --all is required');
    assert.equal((await admin(['shots', 'drop-tallies', '--since', 'yesterday'], env)).code, 2);
    const r = await admin(['shots', 'drop-tallies', '--since', '2026-03-01T00:00:00Z'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /dropped the tally of 1 of 1 shots created since 2026-03-01T00:00:00\.000Z/);
    assert.deepEqual(await shots.digest('adm-new', 2), digestOf(await shots.frames('adm-new'), 2), 'read whole: exact');
    assert.equal(await redis.exists(`${prefix}:shot:adm-old:tally`), 1, 'an older shot keeps its tally');
    assert.equal(await redis.exists(`${prefix}:shot:adm-new:tally`, `${prefix}:shot:adm-new:states`), 0);
  });
});
