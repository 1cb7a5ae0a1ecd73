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
});
