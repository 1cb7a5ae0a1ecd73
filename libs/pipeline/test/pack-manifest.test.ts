/**
 * The one pack.json reader (API, worker, ModelPack): it finds the manifest in a folder or under
 * an object-store prefix, returns the bytes as stored, and every refusal names the file it read
 * and the manifest field at fault — what an operator needs to fix a pack from the error alone.
 * It loads no ONNX Runtime, so the API can serve a pack without the model runtime.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../src/errors.ts';
import { sha256Hex } from '../src/hash.ts';
import { readPackManifest, type ObjectReader } from '../src/pack/manifest.ts';

let root: string;
let folders = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'celfarm-manifest-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** A new empty folder under this suite's temporary root. */
async function tempDir(): Promise<string> {
  const dir = join(root, String((folders += 1)));
  await mkdir(dir);
  return dir;
}

function manifest(): Record<string, unknown> {
  return {
    contract: 'colorize-diffusion-v2@1',
    id: 'studio-v2',
    version: '1.0.0',
    licence: { name: 'CC-BY-NC-SA-4.0', text: 'Attribution-NonCommercial-ShareAlike 4.0', commercialUse: false },
    prediction: 'v',
    latent: { factor: 8, channels: 4, scale: 0.18215 },
    size: { multiple: 64, min: 256, max: 2048, default: 768 },
    graphs: { unet: { file: 'unet.onnx', sha256: 'a'.repeat(64), required: true } },
  };
}

/** A bucket in memory, as the reader sees an object store. */
function bucket(objects: Record<string, string>): ObjectReader {
  const enc = new TextEncoder();
  return {
    get: (key) => Promise.resolve(key in objects ? enc.encode(objects[key]) : null),
    list: (prefix) => Promise.resolve(Object.keys(objects).filter((k) => k.startsWith(prefix)).sort().map((key) => ({ key }))),
  };
}

async function refused(p: Promise<unknown>, code: string, ...texts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PipelineError, `expected PipelineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.field, 'pack.json', e.message);
    for (const t of texts) {
      if (typeof t === 'string') assert.ok(e.message.includes(t), `"${e.message}" names ${t}`);
      else assert.match(e.message, t);
    }
    return true;
  });
}

describe('pack manifest reader', () => {
  it('reads a folder and an object-store prefix alike, returning pack.json as stored', async () => {
    const dir = await tempDir();
    const text = `${JSON.stringify(manifest(), null, 2)}\n`;
    await writeFile(join(dir, 'pack.json'), text);
    const local = await readPackManifest({ dir });
    assert.equal(local.file, join(dir, 'pack.json'));
    assert.equal(sha256Hex(local.bytes), sha256Hex(text), 'the bytes as stored');
    assert.equal(local.manifest.id, 'studio-v2');
    assert.equal(local.manifest.inputs.refMaskNetwork, 'rmbg', 'schema defaults applied');

    const remote = await readPackManifest({ objects: bucket({ 'packs/studio/pack.json': text }), prefix: '/packs/studio/', where: 's3://models' });
    assert.equal(remote.file, 's3://models/packs/studio/pack.json');
    assert.deepEqual(remote.manifest, local.manifest);
  });

  it('a missing pack.json names the place looked in, and the packs below it', async () => {
    const dir = await tempDir();
    await refused(readPackManifest({ dir: join(dir, 'nowhere') }), 'PACK_FILE_MISSING', join(dir, 'nowhere'), 'does not exist');
    await mkdir(join(dir, 'studio-v2'));
    await writeFile(join(dir, 'studio-v2', 'pack.json'), JSON.stringify(manifest()));
    await refused(readPackManifest({ dir }), 'PACK_FILE_MISSING', `no pack.json in ${dir}`, join(dir, 'studio-v2'));

    const objects = bucket({ 'packs/studio-v2/pack.json': '{}', 'packs/studio-v2/unet.onnx': '' });
    await refused(readPackManifest({ objects, prefix: 'packs', where: 's3://models' }), 'PACK_FILE_MISSING', 'no s3://models/packs/pack.json', 's3://models/packs/studio-v2');
    await refused(readPackManifest({ objects, prefix: 'elsewhere', where: 's3://models' }), 'PACK_FILE_MISSING', 's3://models/elsewhere/pack.json', 'nothing is stored there');
  });

  it('malformed JSON names the file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'pack.json'), '{ "id": "studio-v2",');
    await refused(readPackManifest({ dir }), 'PACK_INVALID', `${join(dir, 'pack.json')} is not JSON`);
    await refused(readPackManifest({ objects: bucket({ 'p/pack.json': 'not json' }), prefix: 'p', where: 's3://models' }), 'PACK_INVALID', 's3://models/p/pack.json is not JSON');
  });

  it('a wrong field names the file and every field at fault', async () => {
    const dir = await tempDir();
    const m = manifest();
    (m.graphs as Record<string, { sha256: string }>).unet!.sha256 = 'ABC';
    (m.latent as Record<string, number>).factor = 0;
    await writeFile(join(dir, 'pack.json'), JSON.stringify(m));
    await refused(
      readPackManifest({ dir }),
      'PACK_INVALID',
      `${join(dir, 'pack.json')} is not a valid pack manifest`,
      'graphs.unet.sha256: must be 64 lowercase hex digits',
      /latent\.factor: /,
    );
  });

  it('loads no ONNX Runtime or image codec (the API reads manifests without them)', async () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = async (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = await readFile(file, 'utf8');
      for (const [, spec] of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)) {
        if (spec!.startsWith('.')) await visit(resolve(dirname(file), spec!));
        else packages.add(spec!);
      }
    };
    await visit(resolve(import.meta.dirname, '../src/pack/manifest.ts'));
    assert.deepEqual([...packages].filter((p) => !p.startsWith('node:')).sort(), ['zod']);
  });
});
