/**
 * Packs from the object store: downloaded into the cache with every file's sha256 checked,
 * reused while the cached copy still verifies, fetched again when it does not, and refused when
 * the store's bytes do not match pack.json.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { PipelineError } from '@celfarm/pipeline';
import { fetchPack, parsePackLocation } from '../src/pack-source.ts';
import { startServices, type Services } from './fixtures.ts';

async function uploadPack(s: Services, dir: string, prefix: string): Promise<string[]> {
  const files = await readdir(dir);
  for (const file of files) await s.objects.put(`${prefix}/${file}`, await readFile(join(dir, file)));
  return files;
}

describe('model packs from the object store', () => {
  let s: Services;
  let files: string[];
  before(async () => {
    s = await startServices();
    await buildAnalyticPack(join(s.dir, 'built'));
    files = await uploadPack(s, join(s.dir, 'built'), 'packs/analytic');
  });
  after(() => s.stop());

  it('parses s3:// locations and bare prefixes', () => {
    assert.deepEqual(parsePackLocation('s3://models/packs/analytic/', 'celfarm'), { bucket: 'models', prefix: 'packs/analytic' });
    assert.deepEqual(parsePackLocation('packs/analytic', 'celfarm'), { bucket: 'celfarm', prefix: 'packs/analytic' });
  });

  it('downloads and verifies, then reuses the verified cache, and re-downloads a damaged one', async () => {
    const cache = join(s.dir, 'cache');
    const first = await fetchPack(s.objects, 'packs/analytic', cache);
    assert.equal(first.source, 'download');
    assert.equal(first.dir, join(cache, 'analytic@1.0.0'));
    assert.deepEqual((await readdir(first.dir)).sort(), [...files].sort());
    assert.deepEqual(await readFile(join(first.dir, 'unet.onnx')), await readFile(join(s.dir, 'built', 'unet.onnx')));

    assert.equal((await fetchPack(s.objects, 'packs/analytic', cache)).source, 'cache');

    await writeFile(join(first.dir, 'unet.onnx'), 'not a graph');
    assert.equal((await fetchPack(s.objects, 'packs/analytic', cache)).source, 'download');
    assert.deepEqual(await readFile(join(first.dir, 'unet.onnx')), await readFile(join(s.dir, 'built', 'unet.onnx')));
  });

  it('refuses a pack whose stored file does not match its sha256, leaving no folder behind', async () => {
    await uploadPack(s, join(s.dir, 'built'), 'packs/tampered');
    await s.objects.put('packs/tampered/vae_decoder.onnx', new TextEncoder().encode('tampered'));
    const cache = join(s.dir, 'cache-tampered');
    await assert.rejects(
      fetchPack(s.objects, 'packs/tampered', cache),
      (e: unknown) => e instanceof PipelineError && e.code === 'PACK_HASH_MISMATCH' && e.field === 'graphs.vae_decoder',
    );
    assert.deepEqual(await readdir(cache), []);
    await assert.rejects(
      fetchPack(s.objects, 'packs/none', cache),
      (e: unknown) => e instanceof PipelineError && e.code === 'PACK_FILE_MISSING',
    );
  });
});
