/** Pack loading: a good pack loads; every kind of broken pack is refused with a named error. */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import protobuf from 'onnx-proto';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { colorize } from '../src/colorize.ts';
import { PipelineError } from '../src/errors.ts';
import { ModelPack } from '../src/pack/loader.ts';
import { OrtRuntime } from '../src/ort/runtime.ts';
import { analyticPackDir, loadPack, settingsFor } from './fixtures.ts';

const runtime = new OrtRuntime({ intraOpThreads: 1 });
const temps: string[] = [];
after(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

async function copyPack(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-pack-'));
  temps.push(dir);
  await cp(await analyticPackDir(), dir, { recursive: true });
  return dir;
}

async function editManifest(dir: string, edit: (m: Record<string, unknown>) => void) {
  const path = join(dir, 'pack.json');
  const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(m);
  await writeFile(path, JSON.stringify(m));
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Rewrites `dir/<graph>.onnx` the way exporters write graphs over 2 GB: the float initializers' bytes
 * move to `<graph>.onnx.data` (4 KiB-aligned) and the graph keeps only their location. Updates
 * pack.json's hash and lists the data file.
 */
async function externalizeGraph(dir: string, graph: string): Promise<string> {
  const { onnx } = protobuf;
  const file = `${graph}.onnx`;
  const data = `${file}.data`;
  const model = onnx.ModelProto.decode(await readFile(join(dir, file)));
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    // As onnx.save does with its size threshold, small integer tensors (axes, shapes) stay
    // inline: shape inference reads them before any external data is loaded.
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const raw = t.rawData!;
    const padded = Buffer.alloc(Math.ceil(raw.length / 4096) * 4096);
    padded.set(raw);
    chunks.push(padded);
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: data }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array();
    offset += padded.length;
  }
  assert.ok(offset > 0, `${graph} has float initializers to move`);
  const graphBytes = onnx.ModelProto.encode(model).finish();
  const dataBytes = Buffer.concat(chunks);
  await writeFile(join(dir, file), graphBytes);
  await writeFile(join(dir, data), dataBytes);
  await editManifest(dir, (m) => {
    const entry = (m.graphs as Record<string, { sha256: string; data?: unknown }>)[graph]!;
    entry.sha256 = sha256(graphBytes);
    entry.data = [{ file: data, sha256: sha256(dataBytes) }];
  });
  return data;
}

async function rejects(p: Promise<unknown>, code: string, field: string, text?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PipelineError, `expected PipelineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.field, field, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}

describe('model packs', () => {
  it('loads the analytic pack and reports id, version and licence', async () => {
    const pack = await ModelPack.load(await analyticPackDir(), runtime);
    assert.equal(pack.ref, 'analytic@1.0.0');
    assert.equal(pack.manifest.licence.commercialUse, true);
    assert.equal(pack.manifest.prediction, 'v');
    const unet = await pack.session('unet');
    assert.equal(unet.inputs.length, 43);
    assert.equal(unet.provider, 'cpu');
    await pack.dispose();
  });

  it('falls back along the provider preference and reports the provider it chose', async () => {
    const preferCuda = new OrtRuntime({ providers: ['cuda:0', 'cpu'], intraOpThreads: 1 });
    const pack = await ModelPack.load(await analyticPackDir(), preferCuda);
    const unet = await pack.session('unet');
    const cudaInstalled = existsSync(join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so'));
    assert.equal(unet.provider, cudaInstalled ? 'cuda:0' : 'cpu');
    assert.equal(preferCuda.provider, unet.provider);
    await pack.dispose();
    assert.throws(() => new OrtRuntime({ providers: ['tpu'] }), /unknown execution provider "tpu"/);
    if (!cudaInstalled) {
      const cudaOnly = new OrtRuntime({ providers: ['cuda:0'] });
      await rejects(cudaOnly.open('unet', join(await analyticPackDir(), 'unet.onnx')), 'RUNTIME', 'graphs.unet', /on any provider \(cuda:0: /);
    }
  });

  it('names the graph whose file is missing', async () => {
    const dir = await copyPack();
    await rm(join(dir, 'style_encoder.onnx'));
    await rejects(ModelPack.load(dir, runtime), 'PACK_FILE_MISSING', 'graphs.style_encoder', /style_encoder\.onnx is missing/);
  });

  it('names the graph whose hash does not match', async () => {
    const dir = await copyPack();
    await appendFile(join(dir, 'unet.onnx'), Buffer.from([0]));
    await rejects(ModelPack.load(dir, runtime), 'PACK_HASH_MISMATCH', 'graphs.unet', /pack\.json says [0-9a-f]{64}/);
  });

  it('opens a graph whose weights are ONNX external data beside it, with the same results', async () => {
    const dir = await copyPack();
    const data = await externalizeGraph(dir, 'unet');
    const inputs = () => ({ sketch: sketchFrame(128, 128).image, reference: halfImage(128, 128, COLOURS.red, COLOURS.grey) });
    const original = await loadPack();
    const external = await ModelPack.load(dir, runtime);
    assert.deepEqual(external.manifest.graphs.unet?.data?.map((d) => d.file), [data]);
    const settings = settingsFor(original, { mode: 'vanilla', steps: 3, seed: 5 });
    const a = await colorize(original, settings, inputs());
    const b = await colorize(external, settings, inputs());
    assert.deepEqual(b.images[0]!.data, a.images[0]!.data);
    await external.dispose();
  });

  it('names the graph and the data file when an external-data file is missing or damaged', async () => {
    const dir = await copyPack();
    const data = await externalizeGraph(dir, 'unet');
    const bytes = await readFile(join(dir, data));
    await rm(join(dir, data));
    await rejects(ModelPack.load(dir, runtime), 'PACK_FILE_MISSING', 'graphs.unet.data.0', /graph unet data file unet\.onnx\.data is missing/);
    bytes[100] ^= 0xff;
    await writeFile(join(dir, data), bytes);
    await rejects(ModelPack.load(dir, runtime), 'PACK_HASH_MISMATCH', 'graphs.unet.data.0', /graph unet data file unet\.onnx\.data has sha256 [0-9a-f]{64}, pack\.json says/);
  });

  it('lists every schema problem of pack.json', async () => {
    const dir = await copyPack();
    await editManifest(dir, (m) => {
      m.contract = 'colorize-diffusion-v3@1';
      (m.graphs as Record<string, unknown>).teleporter = { file: 'x.onnx', sha256: '0'.repeat(64) };
    });
    await rejects(ModelPack.load(dir, runtime), 'PACK_INVALID', 'pack.json', /contract.*teleporter|teleporter.*contract/s);
    await writeFile(join(dir, 'pack.json'), '{ not json');
    await rejects(ModelPack.load(dir, runtime), 'PACK_INVALID', 'pack.json', /not JSON/);
    await rejects(ModelPack.load(join(dir, 'nowhere'), runtime), 'PACK_FILE_MISSING', 'pack.json');
  });

  it('refuses a pack without a core graph', async () => {
    const dir = await copyPack();
    await editManifest(dir, (m) => delete (m.graphs as Record<string, unknown>).unet);
    await rejects(ModelPack.load(dir, runtime), 'PACK_INVALID', 'graphs.unet', /core graph unet/);
  });

  it('checks tensor names against the contract when a session opens', async () => {
    const dir = await copyPack();
    const bytes = await readFile(join(dir, 'vae_decoder.onnx'));
    await writeFile(join(dir, 'unet.onnx'), bytes);
    await editManifest(dir, (m) => {
      (m.graphs as Record<string, { sha256: string }>).unet!.sha256 = createHash('sha256').update(bytes).digest('hex');
    });
    const pack = await ModelPack.load(dir, runtime);
    await rejects(pack.session('unet'), 'PACK_INVALID', 'graphs.unet', /missing input tensor "x".*unexpected input tensor "latent"/s);
  });

  it('refuses, when its settings are resolved, a request that needs a graph the pack lacks', async () => {
    const pack = await loadPack({ omit: ['style_encoder'] });
    const refused = (code: string, field: string, text?: RegExp) => (e: unknown) => {
      assert.ok(e instanceof PipelineError, `expected PipelineError, got ${String(e)}`);
      assert.deepEqual([e.code, e.field], [code, field], e.message);
      if (text) assert.match(e.message, text);
      return true;
    };
    assert.throws(() => settingsFor(pack, { mode: 'style', steps: 4 }), refused('GRAPH_MISSING', 'settings.mode', /style_encoder/));
    assert.throws(() => settingsFor(pack, { preprocessor: 'extract', lineExtractor: 'lineart_keras' }), refused('GRAPH_MISSING', 'settings.lineExtractor'));
    // What the pack has still resolves and renders.
    const r = await colorize(pack, settingsFor(pack, { mode: 'vanilla', steps: 2 }), { sketch: sketchFrame(128, 128).image, reference: halfImage(128, 128, COLOURS.red, COLOURS.grey) });
    assert.equal(r.images.length, 1);
  });
});
