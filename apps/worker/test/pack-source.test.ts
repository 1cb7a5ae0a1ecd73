/**
 * Packs from the object store, as real multi-GB packs need them: every object streamed to disk
 * and sha256-checked, a verified cache reused, a damaged file fetched again alone, a bad object
 * refused without leaving a complete pack, a killed download's `.part` and lock cleaned up, and
 * one download per host however many workers start at once.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '@celfarm/config';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { ModelPack, OrtRuntime, packFiles, PipelineError, readPackManifest, type PackManifest } from '@celfarm/pipeline';
import type { ObjectStore } from '@celfarm/storage';
import { fetchPack, PackLockTimeoutError, resolvePack, type LockOwner } from '../src/pack-source.ts';
import { BUCKET, startServices, type Services } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const PACK = 'analytic@1.0.0';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const readManifest = async (dir: string) => (await readPackManifest({ dir })).manifest;
const fast = { pollMs: 5, pollMaxMs: 20 };

/** The store, counting the objects whose bytes are fetched (pack.json aside). */
function counting(store: ObjectStore): { store: ObjectStore; fetched: string[] } {
  const fetched: string[] = [];
  const note = (key: string) => {
    if (!key.endsWith('/pack.json')) fetched.push(key);
  };
  return {
    fetched,
    store: {
      put: (k, b, t) => store.put(k, b, t),
      get: (k) => (note(k), store.get(k)),
      getStream: (k) => (note(k), store.getStream(k)),
      head: (k) => store.head(k),
      list: (p) => store.list(p),
      deletePrefix: (p) => store.deletePrefix(p),
      presignPut: (k, s, t) => store.presignPut(k, s, t),
      presignGet: (k, s) => store.presignGet(k, s),
      ping: () => store.ping(),
    },
  };
}

/** The analytic pack with `data` listed as the UNet's external-data file `unet.onnx.data`. */
async function packWithData(built: string, out: string, data: Uint8Array): Promise<PackManifest> {
  await mkdir(out, { recursive: true });
  const manifest = await readManifest(built);
  manifest.graphs.unet!.data = [{ file: 'unet.onnx.data', sha256: sha256(data) }];
  for (const file of packFiles(manifest)) if (file !== 'unet.onnx.data') await writeFile(join(out, file), await readFile(join(built, file)));
  await writeFile(join(out, 'unet.onnx.data'), data);
  await writeFile(join(out, 'pack.json'), JSON.stringify(manifest, null, 2));
  return manifest;
}

/** Uploads pack.json and every file `packFiles` lists; returns the file names. */
async function uploadPack(s: Services, dir: string, prefix: string): Promise<string[]> {
  const files = ['pack.json', ...packFiles(await readManifest(dir))];
  for (const file of files) await s.objects.put(`${prefix}/${file}`, await readFile(join(dir, file)));
  return files;
}

async function assertNoCompletePack(cache: string) {
  const names = await readdir(cache);
  assert.ok(!names.includes(`${PACK}.complete`), `no completion marker: ${names.join(', ')}`);
  assert.ok(!names.includes(`${PACK}.lock`), 'lock released');
  const inPack = existsSync(join(cache, PACK)) ? await readdir(join(cache, PACK)) : [];
  assert.deepEqual(inPack.filter((n) => n.endsWith('.part')), [], 'no .part left');
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('model packs from the object store', () => {
  let s: Services;
  let files: string[];
  let source: string;
  let data: Buffer;
  before(async () => {
    s = await startServices();
    await buildAnalyticPack(join(s.dir, 'built'));
    source = join(s.dir, 'with-data');
    data = randomBytes(2 * 1024 * 1024 + 3);
    await packWithData(join(s.dir, 'built'), source, data);
    files = await uploadPack(s, source, 'packs/analytic');
  });
  after(() => s.stop());

  it('downloads graph and data files verified, reuses the cache, and fetches a damaged file again alone', async () => {
    const cache = join(s.dir, 'cache');
    const { store, fetched } = counting(s.objects);
    const first = await fetchPack(store, 'packs/analytic', cache);
    assert.equal(first.source, 'download');
    assert.equal(first.dir, join(cache, PACK));
    assert.deepEqual((await readdir(first.dir)).sort(), [...files].sort());
    for (const file of files) assert.ok((await readFile(join(first.dir, file))).equals(await readFile(join(source, file))), file);
    assert.deepEqual(fetched.sort(), files.filter((f) => f !== 'pack.json').map((f) => `packs/analytic/${f}`).sort(), 'each object once');
    assert.deepEqual((await readdir(cache)).sort(), [PACK, `${PACK}.complete`]);
    // The loader, which the worker's host runs, agrees with every hash.
    await (await ModelPack.load(first.dir, new OrtRuntime())).dispose();

    fetched.length = 0;
    assert.equal((await fetchPack(store, 'packs/analytic', cache)).source, 'cache');
    assert.deepEqual(fetched, []);

    await writeFile(join(first.dir, 'unet.onnx.data'), 'not the weights');
    assert.equal((await fetchPack(store, 'packs/analytic', cache)).source, 'download');
    assert.deepEqual(fetched, ['packs/analytic/unet.onnx.data'], 'only the damaged file');
    assert.ok((await readFile(join(first.dir, 'unet.onnx.data'))).equals(data));
  });

  it('refuses a stored file that does not match pack.json, leaving no complete pack, and resumes from the verified files', async () => {
    await uploadPack(s, source, 'packs/tampered');
    const bad = Buffer.from(data);
    bad[1000]! ^= 0x01;
    await s.objects.put('packs/tampered/unet.onnx.data', bad);
    const cache = join(s.dir, 'cache-tampered');
    await assert.rejects(fetchPack(s.objects, 'packs/tampered', cache), (e: unknown) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.equal(e.code, 'PACK_HASH_MISMATCH');
      assert.equal(e.field, 'graphs.unet.data.0');
      assert.match(e.message, /graph unet data file packs\/tampered\/unet\.onnx\.data has sha256 [0-9a-f]{64}, pack\.json says [0-9a-f]{64}/);
      return true;
    });
    await assertNoCompletePack(cache);
    assert.ok(!existsSync(join(cache, PACK, 'unet.onnx.data')), 'the bad bytes never reach their name');

    const { store, fetched } = counting(s.objects);
    assert.equal((await fetchPack(store, 'packs/analytic', cache)).source, 'download');
    const all = packFiles(await readManifest(source));
    assert.deepEqual(fetched, all.slice(all.indexOf('unet.onnx.data')).map((f) => `packs/analytic/${f}`), 'files verified before the failure are kept');

    for (const file of files) if (file !== 'unet.onnx') await s.objects.put(`packs/missing/${file}`, await readFile(join(source, file)));
    const empty = join(s.dir, 'cache-missing');
    await assert.rejects(fetchPack(s.objects, 'packs/missing', empty), (e: unknown) => {
      assert.ok(e instanceof PipelineError && e.code === 'PACK_FILE_MISSING', String(e));
      assert.equal(e.field, 'graphs.unet');
      assert.match(e.message, /graph unet file packs\/missing\/unet\.onnx is missing/);
      return true;
    });
    await assertNoCompletePack(empty);
    await assert.rejects(fetchPack(s.objects, 'packs/none', empty), (e: unknown) => e instanceof PipelineError && e.code === 'PACK_FILE_MISSING' && e.field === 'pack.json');
  });

  it('resolves the configured pack: PACK_DIR in place, PACK_S3_PREFIX downloaded, a wrong prefix named in the error', async () => {
    const cache = join(s.dir, 'cache-resolve');
    const env = { S3_ENDPOINT: s.s3.endpoint, S3_BUCKET: BUCKET, PACK_CACHE_DIR: cache };
    const inPlace = await resolvePack(loadConfig({ ...env, PACK_DIR: source }), s.objects);
    assert.deepEqual([inPlace.source, inPlace.dir, inPlace.manifest.id], ['dir', source, 'analytic']);
    const fetched = await resolvePack(loadConfig({ ...env, PACK_S3_PREFIX: `s3://${BUCKET}/packs/analytic/` }), s.objects);
    assert.deepEqual([fetched.source, fetched.dir], ['download', join(cache, PACK)]);
    assert.deepEqual(fetched.manifest, inPlace.manifest);
    await assert.rejects(resolvePack(loadConfig({ ...env, PACK_S3_PREFIX: 'packs' }), s.objects), (e: unknown) => {
      assert.ok(e instanceof PipelineError && e.code === 'PACK_FILE_MISSING', String(e));
      assert.match(e.message, new RegExp(`no s3://${BUCKET}/packs/pack\\.json; the packs below it are s3://${BUCKET}/packs/analytic`));
      return true;
    });
    await assert.rejects(resolvePack(loadConfig(env), s.objects), /set PACK_DIR .* or PACK_S3_PREFIX/);
  });

  it('takes over the lock and discards the .part of a download that was killed', async () => {
    const cache = join(s.dir, 'cache-killed');
    await mkdir(join(cache, PACK), { recursive: true });
    await writeFile(join(cache, PACK, 'unet.onnx.data.part'), data.subarray(0, 1000));
    await writeFile(join(cache, PACK, 'unet.onnx.part'), 'half a graph');
    await writeFile(join(cache, `${PACK}.lock`), JSON.stringify({ pid: deadPid(), host: hostname(), token: 'killed' }));
    const got = await fetchPack(s.objects, 'packs/analytic', cache, fast);
    assert.equal(got.source, 'download');
    assert.deepEqual((await readdir(got.dir)).sort(), [...files].sort());
    assert.ok((await readFile(join(got.dir, 'unet.onnx.data'))).equals(data));
    assert.deepEqual((await readdir(cache)).sort(), [PACK, `${PACK}.complete`]);

    // Same pid as this process, but an earlier one (a restarted container): also dead.
    await writeFile(join(cache, `${PACK}.complete`), 'stale');
    await writeFile(join(cache, `${PACK}.lock`), JSON.stringify({ pid: process.pid, host: hostname(), token: 'before-restart' }));
    assert.equal((await fetchPack(s.objects, 'packs/analytic', cache, fast)).source, 'cache');
    assert.deepEqual((await readdir(cache)).sort(), [PACK, `${PACK}.complete`]);
  });

  it('downloads once when two workers fetch the same pack at the same time', async () => {
    const cache = join(s.dir, 'cache-shared');
    const { store, fetched } = counting(s.objects);
    const results = await Promise.all([
      fetchPack(store, 'packs/analytic', cache, fast),
      fetchPack(store, 'packs/analytic', cache, fast),
    ]);
    assert.deepEqual(results.map((r) => r.source).sort(), ['cache', 'download']);
    assert.deepEqual(fetched.sort(), files.filter((f) => f !== 'pack.json').map((f) => `packs/analytic/${f}`).sort(), 'each object once');
    assert.ok((await readFile(join(results[1]!.dir, 'unet.onnx.data'))).equals(data));
  });

  it('gives up, naming the lock and its holder, when a live holder makes no progress', async () => {
    const cache = join(s.dir, 'cache-stuck');
    await mkdir(cache, { recursive: true });
    const holder: LockOwner = { pid: 4242, host: 'render-07', token: 'stuck' };
    await writeFile(join(cache, `${PACK}.lock`), JSON.stringify(holder));
    let clock = 0;
    const sleeps: number[] = [];
    await assert.rejects(
      fetchPack(s.objects, 'packs/analytic', cache, {
        stallTimeoutMs: 60_000,
        now: () => clock,
        sleep: async (ms) => {
          sleeps.push(ms);
          clock += ms;
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof PackLockTimeoutError, String(e));
        assert.match(e.message, /analytic@1\.0\.0\.lock, held by pid 4242 on render-07/);
        return true;
      },
    );
    assert.deepEqual(sleeps.slice(0, 6), [200, 400, 800, 1600, 3200, 5000], 'backs off to 5 s');
    assert.ok(clock > 60_000 && clock <= 65_000, `gave up after ${clock} ms`);
    assert.ok(existsSync(join(cache, `${PACK}.lock`)), 'a live holder keeps its lock');
    assert.deepEqual((await readdir(cache)).sort(), [`${PACK}.lock`]);
  });

  it('streams a large file to disk without holding it in memory', async () => {
    const big = randomBytes(64 * 1024 * 1024);
    const dir = join(s.dir, 'with-big-data');
    await packWithData(join(s.dir, 'built'), dir, big);
    await uploadPack(s, dir, 'packs/big');
    const cache = join(s.dir, 'cache-big');
    // In a process of its own: s3rver, in this one, holds buffers of the object it serves. RSS is
    // read after a collection, so it counts what the download keeps, not chunks awaiting the GC.
    const script = `
      import { S3ObjectStore } from '@celfarm/storage';
      import { fetchPack } from './apps/worker/src/pack-source.ts';
      const store = new S3ObjectStore(${JSON.stringify({ endpoint: s.s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true })});
      await store.get('packs/big/pack.json');
      const rss = () => (globalThis.gc(), process.memoryUsage.rss());
      const before = rss();
      let peak = before;
      const sample = setInterval(() => (peak = Math.max(peak, rss())), 25);
      const got = await fetchPack(store, 'packs/big', ${JSON.stringify(cache)});
      clearInterval(sample);
      peak = Math.max(peak, rss());
      store.destroy();
      console.log(JSON.stringify({ source: got.source, growth: peak - before }));
    `;
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    const { source: how, growth } = JSON.parse(out.trim().split('\n').pop()!) as { source: string; growth: number };
    assert.equal(how, 'download');
    assert.ok(growth < big.length / 8, `peak RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB for a 64 MiB file`);
    assert.equal(sha256(await readFile(join(cache, PACK, 'unet.onnx.data'))), sha256(big));
  });
});
