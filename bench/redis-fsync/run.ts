/**
 * What `appendfsync always` costs against `everysec`: the same redis-benchmark (SET and LPUSH,
 * 20 clients) against two redis-servers with AOF on, one per setting, side by side in one run.
 *
 *   node --import tsx bench/redis-fsync/run.ts [--requests 20000] [--clients 20]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '@celfarm/services';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, clients: { type: 'string', default: '20' } } });

/** Requests per second of each test, from redis-benchmark's CSV. */
function benchmark(port: number): Record<string, number> {
  const r = spawnSync('redis-benchmark', ['-p', String(port), '-t', 'set,lpush', '-n', values.requests!, '-c', values.clients!, '--csv'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr || r.error?.message}`);
  const out: Record<string, number> = {};
  for (const line of r.stdout.trim().split('\n').slice(1)) {
    const [test, rps] = line.split(',').map((c) => c.replaceAll('"', ''));
    out[test!] = Number(rps);
  }
  return out;
}

const dir = await mkdtemp(join(tmpdir(), 'celfarm-fsync-'));
const results: Record<string, Record<string, number>> = {};
try {
  // startRedis runs what the farm runs (appendfsync always); the other is set with CONFIG SET.
  for (const mode of ['everysec', 'always'] as const) {
    const redis = await startRedis(join(dir, mode));
    try {
      spawnSync('redis-cli', ['-p', String(redis.port), 'config', 'set', 'appendfsync', mode]);
      const got = spawnSync('redis-cli', ['-p', String(redis.port), 'config', 'get', 'appendfsync'], { encoding: 'utf8' }).stdout.trim().split('\n')[1];
      if (got !== mode) throw new Error(`appendfsync is ${got}, wanted ${mode}`);
      results[mode] = benchmark(redis.port);
    } finally {
      await redis.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log(`redis-benchmark, ${values.requests} requests, ${values.clients} clients, AOF on (requests/s):`);
for (const test of Object.keys(results.always!)) {
  const e = results.everysec![test]!;
  const a = results.always![test]!;
  console.log(`  ${test.padEnd(6)} everysec ${e.toFixed(0).padStart(8)}  always ${a.toFixed(0).padStart(8)}  always/everysec ${(a / e).toFixed(2)}`);
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/redis-fsync.json', JSON.stringify(results, null, 2));
