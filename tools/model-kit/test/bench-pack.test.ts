import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CORE_GRAPHS, GRAPH_SPECS } from '@celfarm/pipeline/pack/contract';
import { ModelPack } from '@celfarm/pipeline/pack/loader';
import { packSchema, type PackManifest } from '@celfarm/pipeline/pack/schema';
import { OrtRuntime, type GraphSession, type Tensor } from '@celfarm/pipeline/ort/runtime';
import { analyticGraphs } from '../src/analytic.ts';
import { BENCH_BUILDER, BENCH_GRAPHS, benchUnet, buildBenchPack, isBenchPackCurrent, seededRandom } from '../src/bench-pack.ts';

const full = (dims: number[], v: number): Tensor => ({ data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v), dims });

/** Deterministic values in [−1, 1]. */
function noise(dims: number[], seed: number): Tensor {
  const r = seededRandom(seed);
  const t = full(dims, 0);
  for (let i = 0; i < t.data.length; i++) t.data[i] = r() * 2 - 1;
  return t;
}

/** All 43 UNet inputs at latent h×h, batch N (CFG layout: entry 1 has a zero reference context). */
function unetFeeds(N: number, h: number): Record<string, Tensor> {
  const ctx = noise([N, 16, 8], 3);
  ctx.data.fill(0, ctx.data.length / N); // the U_ref half sees zeros, as the orchestrator feeds it
  const feeds: Record<string, Tensor> = {
    x: noise([N, 4, h, h], 1),
    timestep: { data: Float32Array.from({ length: N }, () => 901), dims: [N] },
    context_fg: ctx,
    context_bg: full([N, 1, 8], 0),
    control_0: noise([N, 4, h, h], 2),
    control_1: full([N, 4, h / 2, h / 2], -1),
    control_2: full([N, 8, h / 4, h / 4], -1),
    control_3: full([N, 8, h / 8, h / 8], -1),
    control_4: full([N, 8, h / 8, h / 8], -1),
    mask: full([N, 1, h, h], 1),
    ref_scales: full([16], 1),
  };
  for (let k = 0; k < 12; k++) {
    feeds[`hs_bg_${k}`] = full([N, 1, 8], 0);
    feeds[`style_${k}`] = full([N, 8], 0);
  }
  for (const n of ['mask_threshold', 'fg_scale', 'bg_scale', 'merge_scale']) feeds[n] = { data: Float32Array.of(0.5), dims: [] };
  for (const n of ['lora_fg_gate', 'lora_bg_gate', 'style_gate', 'bg_inject_gate']) feeds[n] = { data: Float32Array.of(0), dims: [] };
  return feeds;
}

const root = mkdtempSync(join(tmpdir(), 'bench-pack-'));
const dir = join(root, 'bench');
const rt = new OrtRuntime();
let manifest: PackManifest;
let unet: GraphSession;

before(async () => {
  const t0 = performance.now();
  manifest = await buildBenchPack(dir);
  const ms = performance.now() - t0;
  console.log(`bench pack build: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 10_000, 'building the bench pack takes seconds at most');
  unet = await rt.open('unet', join(dir, 'unet.onnx'));
});

after(async () => {
  await unet?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('bench pack', () => {
  it('writes a pack.json that parses, with the vanilla graphs and sha256s', () => {
    const parsed = packSchema.parse(JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')));
    assert.deepEqual(parsed, manifest);
    assert.equal(parsed.id, 'bench');
    assert.equal(parsed.prediction, 'v');
    assert.ok(parsed.description.includes(`builder=${BENCH_BUILDER}`));
    assert.deepEqual(Object.keys(parsed.graphs).sort(), [...BENCH_GRAPHS].sort());
    for (const g of CORE_GRAPHS) assert.equal(parsed.graphs[g]?.required, true, `${g} is required`);
    assert.ok(parsed.size.min <= 512 && parsed.size.max >= 512 && parsed.size.default === 512);
  });

  it('is current after a build and stale after a graph file changes', async () => {
    assert.equal(await isBenchPackCurrent(dir), true);
    assert.equal(await isBenchPackCurrent(dir, 8), false, 'another width is not current');
    const other = join(root, 'narrow');
    await buildBenchPack(other, { width: 8 });
    assert.equal(await isBenchPackCurrent(other, 8), true);
    writeFileSync(join(other, 'vae_decoder.onnx'), 'not a graph');
    assert.equal(await isBenchPackCurrent(other, 8), false, 'a changed graph file is not current');
  });

  it('loads through ModelPack (contract check of every graph)', async () => {
    const runtime = new OrtRuntime();
    const pack = await ModelPack.load(dir, runtime);
    try {
      await pack.openAll();
    } finally {
      await pack.dispose();
    }
  });

  it('declares exactly the contract UNet inputs, like the analytic UNet', async () => {
    const names = unet.inputs.map((i) => i.name).sort();
    assert.equal(names.length, 43);
    assert.deepEqual(names, Object.keys(GRAPH_SPECS.unet.inputs).sort());
    const analytic = await rt.open('unet', analyticGraphs('v').unet);
    try {
      const dims = (s: GraphSession) => Object.fromEntries(s.inputs.map((i) => [i.name, i.dims]));
      assert.deepEqual(dims(unet), dims(analytic), 'same names, ranks and widths as the analytic UNet');
    } finally {
      await analytic.dispose();
    }
    assert.deepEqual(
      unet.outputs.map((o) => o.name),
      ['model_output'],
    );
  });

  it('runs at a small size with finite, input-dependent outputs of the right shape', async () => {
    const N = 2;
    const h = 8;
    const feeds = unetFeeds(N, h);
    const out = (await unet.run(feeds)).model_output!;
    assert.deepEqual(out.dims, [N, 4, h, h]);
    let sum2 = 0;
    for (const v of out.data) {
      assert.ok(Number.isFinite(v), 'finite');
      sum2 += v * v;
    }
    const rms = Math.sqrt(sum2 / out.data.length);
    assert.ok(rms > 0.01 && rms < 10, `output is O(1), rms ${rms}`);
    const per = out.data.length / N;
    let diff = 0;
    for (let i = 0; i < per; i++) diff = Math.max(diff, Math.abs(out.data[i]! - out.data[per + i]!));
    assert.ok(diff > 1e-4, 'the reference context changes the output (cross-attention is live)');
    const again = (await unet.run(feeds)).model_output!;
    assert.deepEqual(again.data, out.data, 'deterministic');
  });

  it('builds the same bytes every time (seeded weights)', () => {
    const a = benchUnet({ width: 16, blocks: 1 });
    const b = benchUnet({ width: 16, blocks: 1 });
    assert.deepEqual(a, b);
  });
});
