/**
 * pack.json as a converter writes it for real weights: graphs with ONNX external-data files,
 * provenance and the licence's source are accepted; bad ones are refused naming the field; the
 * packs the model kit writes still parse, and `packFiles` lists every file a pack has.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packFiles } from '../src/pack/loader.ts';
import { packSchema } from '../src/pack/schema.ts';
import { analyticPackDir } from './fixtures.ts';

const h = (c: string) => c.repeat(64);

function converted(): Record<string, unknown> {
  return {
    contract: 'colorize-diffusion-v2@1',
    id: 'colorize-v2',
    version: '2.0.0',
    licence: { name: 'CC-BY-NC-SA-4.0', text: 'Attribution-NonCommercial-ShareAlike 4.0', commercialUse: false, source: 'https://example.org/weights' },
    prediction: 'v',
    latent: { factor: 8, channels: 4, scale: 0.18215 },
    size: { multiple: 64, min: 256, max: 2048, default: 768 },
    graphs: {
      unet: { file: 'unet.onnx', sha256: h('a'), required: true, data: [{ file: 'unet.onnx.data', sha256: h('b') }] },
      vae_decoder: { file: 'vae_decoder.onnx', sha256: h('c'), required: true },
      clip_image: { file: 'clip_image.onnx', sha256: h('d'), required: true, data: [] },
    },
    provenance: {
      converter: 'celfarm-convert@1.0.0',
      dtype: 'fp16',
      sources: [{ role: 'unet', file: 'colorizediffusion_v2.ckpt', sha256: h('e'), bytes: 6_800_000_000 }],
      config: { model: { target: 'ldm.models.diffusion.ddpm' }, channels: 4 },
    },
  };
}

// `any`: the edits below reach into nested test data whose shape need not be restated.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

/** The paths (dot-joined) of every issue zod finds after `edit`. */
function problems(edit: (m: Loose) => void): string[] {
  const m = converted() as Loose;
  edit(m);
  const r = packSchema.safeParse(m);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
}

describe('pack.json schema', () => {
  it('accepts external-data files, provenance and the licence source', () => {
    const m = packSchema.parse(converted());
    assert.deepEqual(m.graphs.unet?.data, [{ file: 'unet.onnx.data', sha256: h('b') }]);
    assert.equal(m.graphs.vae_decoder?.data, undefined, 'no data files unless listed');
    assert.equal(m.provenance?.dtype, 'fp16');
    assert.equal(m.provenance?.sources[0]?.bytes, 6_800_000_000);
    assert.equal(m.licence.source, 'https://example.org/weights');
    assert.deepEqual(packFiles(m), ['unet.onnx', 'unet.onnx.data', 'vae_decoder.onnx', 'clip_image.onnx']);
  });

  it('still parses the packs the model kit writes, whose files are the graph files', async () => {
    const dir = await analyticPackDir();
    const m = packSchema.parse(JSON.parse(await readFile(join(dir, 'pack.json'), 'utf8')));
    assert.equal(m.provenance, undefined);
    assert.deepEqual(packFiles(m), Object.values(m.graphs).map((g) => g.file));
  });

  it('refuses bad data files naming the field', () => {
    assert.deepEqual(problems((m) => (m.graphs.unet.data[0].file = 'weights/unet.onnx.data')), ['graphs.unet.data.0.file']);
    assert.deepEqual(problems((m) => (m.graphs.unet.data[0].file = '..')), ['graphs.unet.data.0.file']);
    assert.deepEqual(problems((m) => (m.graphs.unet.data[0].sha256 = 'ABC')), ['graphs.unet.data.0.sha256']);
    assert.deepEqual(problems((m) => (m.graphs.unet.data[0].offset = 0)), ['graphs.unet.data.0']);
    assert.deepEqual(problems((m) => (m.graphs.unet.data = 'unet.onnx.data')), ['graphs.unet.data']);
    assert.deepEqual(problems((m) => (m.graphs.vae_decoder.data = [{ file: 'unet.onnx.data', sha256: h('f') }])), ['graphs.vae_decoder.data.0.file']);
  });

  it('lists one file shared by two graphs once', () => {
    const raw = converted() as { graphs: Record<string, { data?: unknown[] }> };
    raw.graphs.vae_decoder!.data = [{ file: 'unet.onnx.data', sha256: h('b') }];
    assert.deepEqual(packFiles(packSchema.parse(raw)), ['unet.onnx', 'unet.onnx.data', 'vae_decoder.onnx', 'clip_image.onnx']);
  });

  it('refuses bad provenance and licence source naming the field', () => {
    assert.deepEqual(problems((m) => (m.provenance.dtype = 'bf16')), ['provenance.dtype']);
    assert.deepEqual(problems((m) => (m.provenance.sources[0].bytes = -1)), ['provenance.sources.0.bytes']);
    assert.deepEqual(problems((m) => (m.provenance.sources[0].bytes = 1.5)), ['provenance.sources.0.bytes']);
    assert.deepEqual(problems((m) => (m.provenance.sources[0].sha256 = h('g'))), ['provenance.sources.0.sha256']);
    assert.deepEqual(problems((m) => delete m.provenance.converter), ['provenance.converter']);
    assert.deepEqual(problems((m) => (m.provenance.config = [1, 2])), ['provenance.config']);
    assert.deepEqual(problems((m) => (m.provenance.signedBy = 'me')), ['provenance']);
    assert.deepEqual(problems((m) => (m.licence.source = '')), ['licence.source']);
  });
});
