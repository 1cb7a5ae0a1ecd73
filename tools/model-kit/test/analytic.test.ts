import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONTRACT_VERSION, GRAPH_NAMES, GRAPH_SPECS, type GraphName, type GraphSpec } from '@celfarm/pipeline/pack/contract';
import { packSchema, type PackManifest } from '@celfarm/pipeline/pack/schema';
import { OrtRuntime, type GraphSession, type Tensor } from '@celfarm/pipeline/ort/runtime';
import {
  ANALYTIC_BUILDER,
  ANALYTIC_GRAPHS,
  CLIP_MEAN,
  CLIP_STD,
  IMAGENET_MEAN,
  IMAGENET_STD,
  LATENT_SCALE as S,
  buildAnalyticPack,
  sigmaOfT,
} from '../src/analytic.ts';
import { isPackCurrent } from '../src/cli.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

const t = (data: ArrayLike<number>, dims: number[]): Tensor => ({ data: Float32Array.from(data), dims });
const full = (dims: number[], v: number): Tensor => t(new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v), dims);
const scalar = (v: number): Tensor => t([v], []);

/** An NCHW image from a per-pixel RGB function. */
function image(b: number, h: number, w: number, rgb: (y: number, x: number, n: number) => readonly number[]): Tensor {
  const data = new Float32Array(b * 3 * h * w);
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const px = rgb(y, x, n);
        for (let c = 0; c < 3; c++) data[((n * 3 + c) * h + y) * w + x] = px[c]!;
      }
    }
  }
  return { data, dims: [b, 3, h, w] };
}

/** Normalises a [−1,1] image per channel: ((x+1)/2 − mean)/std. */
function normalise(img: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  const [, , h, w] = img.dims as [number, number, number, number];
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / (h * w)) % 3;
    out[i] = ((img.data[i]! + 1) / 2 - mean[c]!) / std[c]!;
  }
  return { data: out, dims: img.dims };
}

/** Element of an NCHW tensor. */
const at = (x: Tensor, n: number, c: number, y: number, xx: number) =>
  x.data[((n * x.dims[1]! + c) * x.dims[2]! + y) * x.dims[3]! + xx]!;

function close(actual: number, expected: number, tol: number, what: string) {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected} (±${tol})`);
}
function allClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) close(actual[i]!, expected[i]!, tol, `${what}[${i}]`);
}

const RED = [1, -1, -1] as const;
const RED_TOKEN = [1, -1, -1, 2, -1 / 3, 1, 0, 0];
/** Feature token of a uniform colour. */
const token = (rgb: readonly number[]) => [
  rgb[0]!,
  rgb[1]!,
  rgb[2]!,
  Math.max(...rgb) - Math.min(...rgb),
  (rgb[0]! + rgb[1]! + rgb[2]!) / 3,
  1,
  0,
  0,
];
const tokens = (rows: number[][]): Tensor => t(rows.flat(), [1, rows.length, 8]);

interface UnetCase {
  x?: Tensor;
  timestep?: number;
  contextFg?: Tensor;
  contextBg?: Tensor;
  control0?: Tensor;
  hsBg11?: Tensor;
  style11?: Tensor;
  mask?: Tensor;
  refScales?: number[];
  scalars?: Partial<Record<string, number>>;
}

const H = 8; // latent size of the UNet tests (64 px)

/** A full 43-input UNet feed with batch 1 at 8×8 latent; defaults: blank sketch, mask ones, gates 0. */
function unetFeeds(c: UnetCase): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {
    x: c.x ?? full([1, 4, H, H], 0.3),
    timestep: t([c.timestep ?? 500], [1]),
    context_fg: c.contextFg ?? tokens([RED_TOKEN]),
    context_bg: c.contextBg ?? full([1, 1, 8], 0),
    control_0: c.control0 ?? full([1, 4, H, H], -1),
    control_1: full([1, 4, H / 2, H / 2], -1),
    control_2: full([1, 8, H / 4, H / 4], -1),
    control_3: full([1, 8, H / 8, H / 8], -1),
    control_4: full([1, 8, H / 8, H / 8], -1),
    mask: c.mask ?? full([1, 1, H, H], 1),
    ref_scales: t(c.refScales ?? Array(16).fill(1), [16]),
  };
  for (let k = 0; k < 12; k++) {
    feeds[`hs_bg_${k}`] = k === 11 && c.hsBg11 ? c.hsBg11 : full([1, k + 1, 8], 0); // token counts differ per k
    feeds[`style_${k}`] = k === 11 && c.style11 ? c.style11 : full([1, 8], 0);
  }
  const scalars = {
    mask_threshold: 0.5,
    fg_scale: 1,
    bg_scale: 1,
    merge_scale: 0,
    lora_fg_gate: 0,
    lora_bg_gate: 0,
    style_gate: 0,
    bg_inject_gate: 0,
    ...c.scalars,
  };
  for (const [k, v] of Object.entries(scalars)) feeds[k] = scalar(v!);
  return feeds;
}

/** α and σ̂ at model time t (float64 reference of the graph's σ(t)). */
function alphaSigmaHat(timestep: number) {
  const sigma = sigmaOfT(timestep);
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { sigma, alpha, sigmaHat: sigma * alpha };
}

/** Denoised latent D recovered from a UNet output: v: α·x − σ̂·v; eps: (x − σ̂·ε)/α. */
function denoised(pred: 'v' | 'eps', x: Tensor, out: Tensor, timestep: number): Float32Array {
  const { alpha, sigmaHat } = alphaSigmaHat(timestep);
  return out.data.map((o, i) => (pred === 'v' ? alpha * x.data[i]! - sigmaHat * o : (x.data[i]! - sigmaHat * o) / alpha));
}

/** The 4-channel target latent [N,4,h,w] of one constant rgb with optional per-pixel override. */
function targetOf(rgbAt: (y: number, x: number) => readonly number[]): Float32Array {
  const out = new Float32Array(4 * H * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < H; x++) {
      const rgb = rgbAt(y, x);
      for (let c = 0; c < 3; c++) out[(c * H + y) * H + x] = S * rgb[c]!;
    }
  }
  return out;
}

/** A deterministic pseudo-random x in [−2, 2]. */
function noise(dims: number[], seed = 1): Tensor {
  let s = seed;
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = (s / 2147483648) * 4 - 2;
  }
  return { data, dims };
}

// ---------------------------------------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), 'analytic-pack-'));
const dirV = join(root, 'analytic');
const dirEps = join(root, 'analytic-eps');
let manifestV: PackManifest;
let manifestEps: PackManifest;
const rt = new OrtRuntime();
const sessions = new Map<string, GraphSession>();

async function session(graph: GraphName, dir = dirV): Promise<GraphSession> {
  const key = `${dir}/${graph}`;
  let s = sessions.get(key);
  if (!s) {
    s = await rt.open(graph, join(dir, `${graph}.onnx`));
    sessions.set(key, s);
  }
  return s;
}

before(async () => {
  const t0 = performance.now();
  manifestV = await buildAnalyticPack(dirV);
  const t1 = performance.now();
  manifestEps = await buildAnalyticPack(dirEps, { prediction: 'eps' });
  const t2 = performance.now();
  console.log(
    `analytic pack build: v ${(t1 - t0).toFixed(0)} ms, eps ${(t2 - t1).toFixed(0)} ms, total ${(t2 - t0).toFixed(0)} ms`,
  );
  assert.ok(t2 - t0 < 10_000, 'building both packs takes seconds at most');
});

after(async () => {
  for (const s of sessions.values()) await s.dispose();
  rmSync(root, { recursive: true, force: true });
});

void describe('analytic pack manifest', () => {
  void it('parses with packSchema and carries the documented fields', () => {
    for (const [dir, m, id, pred] of [
      [dirV, manifestV, 'analytic', 'v'],
      [dirEps, manifestEps, 'analytic-eps', 'eps'],
    ] as const) {
      const onDisk = packSchema.parse(JSON.parse(readFileSync(join(dir, 'pack.json'), 'utf8')));
      assert.deepEqual(onDisk, m);
      assert.equal(m.contract, CONTRACT_VERSION);
      assert.equal(m.id, id);
      assert.equal(m.prediction, pred);
      assert.equal(m.version, '1.0.0');
      assert.deepEqual(m.licence, {
        name: 'MIT',
        text: 'Analytic test pack generated by celfarm model-kit; no trained weights.',
        commercialUse: true,
      });
      assert.deepEqual(m.latent, { factor: 8, channels: 4, scale: 0.18215 });
      assert.deepEqual(m.size, { multiple: 64, min: 64, max: 1024, default: 128 });
      assert.deepEqual(m.inputs, { clip: 224, sketchMask: 256, refMask: 256, lineExtractor: 256, refMaskNetwork: 'rmbg' });
      assert.ok(m.description.includes(`builder=${ANALYTIC_BUILDER}`));
      assert.deepEqual(Object.keys(m.graphs).sort(), [...ANALYTIC_GRAPHS].sort());
    }
  });

  void it('hashes match the files and required flags are set for the core graphs', () => {
    for (const [name, entry] of Object.entries(manifestV.graphs)) {
      assert.equal(entry.file, `${name}.onnx`);
      const hash = createHash('sha256').update(readFileSync(join(dirV, entry.file))).digest('hex');
      assert.equal(hash, entry.sha256, name);
      assert.equal(entry.required, ['clip_image', 'vae_decoder', 'control_encoder', 'unet'].includes(name), name);
    }
    // Only the UNets differ between the v and eps packs.
    for (const name of ANALYTIC_GRAPHS) {
      const same = manifestV.graphs[name]!.sha256 === manifestEps.graphs[name]!.sha256;
      assert.equal(same, name !== 'unet' && name !== 'unet_inject', name);
    }
  });

  void it('omit leaves graphs out, custom ids work, and the CLI staleness check sees it', async () => {
    const dir = join(root, 'omit');
    const m = await buildAnalyticPack(dir, { id: 'analytic-small', omit: ['bg_encoder', 'lineart'] });
    assert.equal(m.id, 'analytic-small');
    assert.ok(!('bg_encoder' in m.graphs) && !('lineart' in m.graphs));
    assert.equal(Object.keys(m.graphs).length, ANALYTIC_GRAPHS.length - 2);
    assert.equal(await isPackCurrent(dir, 'v'), true);
    assert.equal(await isPackCurrent(dir, 'eps'), false);
    assert.equal(await isPackCurrent(join(root, 'missing'), 'v'), false);
  });
});

void describe('analytic graphs follow the contract', () => {
  for (const graph of ANALYTIC_GRAPHS) {
    void it(`${graph}: names and ranks`, async () => {
      const s = await session(graph);
      const spec: GraphSpec = GRAPH_SPECS[graph];
      const inputs = Object.fromEntries(s.inputs.map((i) => [i.name, i.dims.length]));
      const outputs = Object.fromEntries(s.outputs.map((o) => [o.name, o.dims.length]));
      const optionalIn = spec.optionalInputs ?? {};
      const optionalOut = spec.optionalOutputs ?? {};
      assert.deepEqual(
        Object.fromEntries(Object.entries(inputs).filter(([n]) => !(n in optionalIn))),
        { ...spec.inputs },
      );
      assert.deepEqual(
        Object.fromEntries(Object.entries(outputs).filter(([n]) => !(n in optionalOut))),
        { ...spec.outputs },
      );
      for (const [n, r] of Object.entries(inputs)) if (n in optionalIn) assert.equal(r, optionalIn[n]);
      for (const [n, r] of Object.entries(outputs)) if (n in optionalOut) assert.equal(r, optionalOut[n]);
      for (const i of [...s.inputs, ...s.outputs]) assert.equal(i.type, 'float32', `${graph}.${i.name}`);
    });
  }

  void it('the unet has the 43 contract inputs; the other extractors are absent', async () => {
    const s = await session('unet');
    assert.equal(s.inputs.length, 43);
    assert.deepEqual(s.inputs.find((i) => i.name === 'mask_threshold')?.dims, []);
    assert.deepEqual(s.inputs.find((i) => i.name === 'ref_scales')?.dims, [16]);
    const tokenDims = new Set(s.inputs.filter((i) => i.name.startsWith('hs_bg_')).map((i) => String(i.dims[1])));
    assert.equal(tokenDims.size, 12, 'each hs_bg_k has its own symbolic token axis');
    for (const g of GRAPH_NAMES) if (!(ANALYTIC_GRAPHS as readonly string[]).includes(g)) assert.ok(!(g in manifestV.graphs), g);
  });
});

void describe('analytic graphs: closed-form behaviour', () => {
  void it('clip_image: a uniform red image gives 16 red tokens; tokens are row-major over 4×4 cells', async () => {
    const s = await session('clip_image');
    const red = normalise(image(1, 224, 224, () => RED), CLIP_MEAN, CLIP_STD);
    const out = await s.run({ pixels: red });
    assert.deepEqual(out.local_tokens!.dims, [1, 16, 8]);
    allClose(out.local_tokens!.data, Array(16).fill(RED_TOKEN).flat(), 1e-5, 'red tokens');
    allClose(out.pooled!.data, RED_TOKEN, 1e-5, 'pooled');

    // Cell (row 0, col 1) green, cell (row 2, col 3) grey 0.2, the rest white; batch 2 (second image black).
    const pattern = normalise(
      image(2, 224, 224, (y, x, n) => {
        if (n === 1) return [-1, -1, -1];
        const cy = Math.floor(y / 56);
        const cx = Math.floor(x / 56);
        if (cy === 0 && cx === 1) return [-1, 1, -1];
        if (cy === 2 && cx === 3) return [0.2, 0.2, 0.2];
        return [1, 1, 1];
      }),
      CLIP_MEAN,
      CLIP_STD,
    );
    const o = (await s.run({ pixels: pattern })).local_tokens!;
    assert.deepEqual(o.dims, [2, 16, 8]);
    const tok = (n: number, i: number) => Array.from(o.data.subarray((n * 16 + i) * 8, (n * 16 + i + 1) * 8));
    allClose(tok(0, 1), token([-1, 1, -1]), 1e-5, 'green cell');
    allClose(tok(0, 2 * 4 + 3), token([0.2, 0.2, 0.2]), 1e-5, 'grey cell');
    allClose(tok(0, 0), token([1, 1, 1]), 1e-5, 'white cell');
    allClose(tok(1, 5), token([-1, -1, -1]), 1e-5, 'black image');
  });

  void it('vae_encoder → vae_decoder round-trips an 8×8-block image', async () => {
    const enc = await session('vae_encoder');
    const dec = await session('vae_decoder');
    const blocks = noise([1, 3, 2, 3], 7);
    const img = image(1, 16, 24, (y, x) =>
      [0, 1, 2].map((c) => at(blocks, 0, c, Math.floor(y / 8), Math.floor(x / 8))),
    );
    const { mean, logvar } = await enc.run({ image: img });
    assert.deepEqual(mean!.dims, [1, 4, 2, 3]);
    assert.deepEqual(logvar!.dims, [1, 4, 2, 3]);
    assert.ok(logvar!.data.every((v) => v === -30));
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 3; c++) close(at(mean!, 0, c, y, x), at(blocks, 0, c, y, x), 1e-5, 'mean');
        assert.equal(at(mean!, 0, 3, y, x), 0);
      }
    }
    const back = (await dec.run({ latent: mean! })).image!;
    assert.deepEqual(back.dims, [1, 3, 16, 24]);
    allClose(back.data, img.data, 1e-5, 'round trip');
  });

  void it('control_encoder: blank sketch hints are −1 at every scale; pooling follows the documented widths', async () => {
    const s = await session('control_encoder');
    const blank = await s.run({ sketch: full([1, 3, 64, 128], -1) });
    const shapes = {
      control_0: [1, 4, 8, 16],
      control_1: [1, 4, 4, 8],
      control_2: [1, 8, 2, 4],
      control_3: [1, 8, 1, 2],
      control_4: [1, 8, 1, 2],
    };
    for (const [name, dims] of Object.entries(shapes)) {
      assert.deepEqual(blank[name]!.dims, dims, name);
      assert.ok(blank[name]!.data.every((v) => v === -1), name);
    }
    // A white (+1) 8×8 block at latent cell (0,0): control_0 there is +1, control_1 averages 4 cells.
    const one = await s.run({ sketch: image(1, 64, 64, (y, x) => (y < 8 && x < 8 ? [1, 1, 1] : [-1, -1, -1])) });
    for (let c = 0; c < 4; c++) assert.equal(at(one.control_0!, 0, c, 0, 0), 1);
    assert.equal(at(one.control_0!, 0, 0, 0, 1), -1);
    close(at(one.control_1!, 0, 3, 0, 0), (1 - 3) / 4, 1e-6, 'control_1');
    close(at(one.control_2!, 0, 7, 0, 0), (1 - 15) / 16, 1e-6, 'control_2');
    close(at(one.control_3!, 0, 7, 0, 0), (1 - 63) / 64, 1e-6, 'control_3');
    assert.deepEqual(one.control_4!.data, one.control_3!.data);
  });

  void it('bg_encoder: feature tokens of latent/S at the documented pooling levels', async () => {
    const s = await session('bg_encoder');
    const rgb = [0.5, -0.25, 0.75];
    const latent = full([1, 4, 8, 8], 0);
    for (let c = 0; c < 3; c++) latent.data.fill(S * rgb[c]!, c * 64, (c + 1) * 64);
    const out = await s.run({ latent, y: full([1, 512], 0), context: full([1, 3, 8], 0) });
    for (let k = 0; k < 12; k++) {
      const level = 3 - Math.floor(k / 3);
      const T = (8 >> level) ** 2;
      const o = out[`hs_bg_${k}`]!;
      assert.deepEqual(o.dims, [1, T, 8], `hs_bg_${k}`);
      allClose(o.data, Array(T).fill(token(rgb)).flat(), 1e-5, `hs_bg_${k}`);
    }
  });

  void it('style_encoder: scale −0.5, shift half the mean colour', async () => {
    const s = await session('style_encoder');
    const latent = full([2, 4, 8, 8], 0);
    // Batch 0: left half rgb (1, 0, −1), right half (0, 0, 1) → mean (0.5, 0, 0); batch 1: all 0.4 red.
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const px = x < 4 ? [1, 0, -1] : [0, 0, 1];
        for (let c = 0; c < 3; c++) {
          latent.data[((0 * 4 + c) * 8 + y) * 8 + x] = S * px[c]!;
          latent.data[((1 * 4 + c) * 8 + y) * 8 + x] = S * (c === 0 ? 0.4 : 0);
        }
      }
    }
    const out = await s.run({ latent, y: full([2, 512], 0), context: full([2, 1, 8], 0) });
    const expected = [-0.5, -0.5, -0.5, 0, 0.25, 0, 0, 0, -0.5, -0.5, -0.5, 0, 0.2, 0, 0, 0];
    for (let k = 0; k < 12; k++) {
      assert.deepEqual(out[`style_${k}`]!.dims, [2, 8]);
      allClose(out[`style_${k}`]!.data, expected, 1e-6, `style_${k}`);
    }
  });

  void it('unet (v): D = α·x − σ̂·v is the red reference scaled by S·s·fg_scale, lines are −S', async () => {
    const s = await session('unet');
    const x = noise([1, 4, H, H], 3);
    const timestep = 500.3;
    const refScales = [...Array(8).fill(0.5), ...Array(8).fill(1)]; // mean 0.75
    const control0 = full([1, 4, H, H], -1);
    for (let c = 0; c < 4; c++) control0.data[(c * H + 2) * H + 5] = 1; // one line pixel at (2,5)
    // Red is the most chromatic of three reference tokens.
    const contextFg = tokens([token([0.2, 0.1, 0.3]), RED_TOKEN, token([0.5, 0.5, 0.5])]);
    const out = await s.run(
      unetFeeds({ x, timestep, refScales, control0, contextFg, scalars: { fg_scale: 0.8, lora_fg_gate: 1, lora_bg_gate: 1 } }),
    );
    assert.deepEqual(out.model_output!.dims, [1, 4, H, H]);
    const k = 0.75 * 0.8;
    const expected = targetOf((y, xx) => (y === 2 && xx === 5 ? [-1, -1, -1] : RED.map((v) => v * k)));
    allClose(denoised('v', x, out.model_output!, timestep), expected, 2e-5, 'D');
  });

  void it('unet: σ(941) = 10.4250 through the v relation; σ_min, σ_max and fractional t', async () => {
    const s = await session('unet');
    const x = full([1, 4, H, H], 1);
    // Target 0 (reference scales 0, blank sketch) → v = α·x/σ̂ = 1/σ.
    const sigmaAt = async (timestep: number) => {
      const v = (await s.run(unetFeeds({ x, timestep, refScales: Array(16).fill(0) }))).model_output!;
      return 1 / v.data[0]!;
    };
    assert.equal((await sigmaAt(941)).toFixed(4), '10.4250');
    close(await sigmaAt(0), 0.0291675, 1e-7, 'σ_min');
    close(await sigmaAt(999), 14.614642, 1e-5, 'σ_max');
    close(await sigmaAt(1200), 14.614642, 1e-5, 'clamped above');
    close(await sigmaAt(-3), 0.0291675, 1e-7, 'clamped below');
    close(await sigmaAt(941.25), sigmaOfT(941.25), 1e-5, 'fractional t');
    close(await sigmaAt(941.25), Math.exp(0.75 * Math.log(sigmaOfT(941)) + 0.25 * Math.log(sigmaOfT(942))), 1e-5, 'log-linear');
  });

  void it('unet: mask split, merge, warp injection and style modulation', async () => {
    const s = await session('unet');
    const x = noise([1, 4, H, H], 5);
    const timestep = 300;
    const contextFg = tokens([RED_TOKEN, token([0, 0, 0])]);
    // Darkest background token wins: dark blue.
    const dark = [-0.8, -0.8, -0.2];
    const contextBg = tokens([token([0.9, 0.9, 0.9]), token(dark), token([0.1, 0.6, 0.1])]);
    // Mask: left half foreground (0.9 > 0.5), right half background (0.1).
    const mask = full([1, 1, H, H], 0);
    for (let y = 0; y < H; y++) for (let xx = 0; xx < H; xx++) mask.data[y * H + xx] = xx < 4 ? 0.9 : 0.1;
    const D = async (c: UnetCase) => denoised('v', x, (await s.run(unetFeeds({ x, timestep, ...c }))).model_output!, timestep);
    const split = (fg: readonly number[], bg: readonly number[]) => targetOf((_y, xx) => (xx < 4 ? fg : bg));

    const bgScale = 0.5;
    const bgc = dark.map((v) => v * bgScale);
    allClose(await D({ contextFg, contextBg, mask, scalars: { bg_scale: bgScale } }), split(RED, bgc), 2e-5, 'split');

    const m = 0.25;
    const merged = RED.map((v, i) => (1 - m) * v + m * bgc[i]!);
    allClose(
      await D({ contextFg, contextBg, mask, scalars: { bg_scale: bgScale, merge_scale: m } }),
      split(merged, bgc),
      2e-5,
      'merge',
    );

    // Warp: darkest hs_bg_11 token (green-ish) replaces the background colour when the gate is 1.
    const wc = [-0.5, 0, -0.5];
    const hsBg11 = tokens([token([1, 1, 1]), token(wc)]);
    allClose(
      await D({ contextFg, contextBg, mask, hsBg11, scalars: { bg_scale: bgScale, bg_inject_gate: 1 } }),
      split(RED, wc),
      2e-5,
      'warp',
    );
    const half = bgc.map((v, i) => v + 0.5 * (wc[i]! - v));
    allClose(
      await D({ contextFg, contextBg, mask, hsBg11, scalars: { bg_scale: bgScale, bg_inject_gate: 0.5 } }),
      split(RED, half),
      2e-5,
      'warp 0.5',
    );

    // Style: colour + gate·(colour·scale + shift); the style encoder's vectors (scale −0.5) halve and shift.
    const style11 = t([-0.5, -0.5, -0.5, 0, 0.1, 0.2, -0.3, 0], [1, 8]);
    const styled = (c: readonly number[]) => c.map((v, i) => v + (v * -0.5 + [0.1, 0.2, -0.3][i]!));
    allClose(
      await D({ contextFg, contextBg, mask, style11, scalars: { bg_scale: bgScale, style_gate: 1 } }),
      split(styled(RED), styled(bgc)),
      2e-5,
      'style',
    );
    // Style gate 0 ignores the vectors.
    allClose(await D({ contextFg, contextBg, mask, style11, scalars: { bg_scale: bgScale } }), split(RED, bgc), 2e-5, 'no style');
  });

  void it('unet (eps): D = (x − σ̂·ε)/α is the same target; batch entries are independent', async () => {
    const s = await session('unet', dirEps);
    const N = 2;
    const x = noise([N, 4, H, H], 9);
    const feeds = unetFeeds({ x });
    // Batch 2: entry 0 has a red reference at t = 941, entry 1 a green one at t = 48.
    const tile = (tt: Tensor) => t([...tt.data, ...tt.data], [N, ...tt.dims.slice(1)]);
    for (const [k, v] of Object.entries(feeds)) {
      if (v.dims.length > 0 && k !== 'ref_scales' && k !== 'x' && k !== 'timestep') feeds[k] = tile(v);
    }
    feeds.context_fg = t([...RED_TOKEN, ...token([-1, 1, -1])], [N, 1, 8]);
    feeds.timestep = t([941, 48], [N]);
    const out = (await s.run(feeds)).model_output!;
    assert.deepEqual(out.dims, [N, 4, H, H]);
    const per = 4 * H * H;
    for (const [n, tt, rgb] of [
      [0, 941, RED],
      [1, 48, [-1, 1, -1]],
    ] as const) {
      const xn = t(x.data.subarray(n * per, (n + 1) * per), [1, 4, H, H]);
      const on = t(out.data.subarray(n * per, (n + 1) * per), [1, 4, H, H]);
      allClose(denoised('eps', xn, on, tt), targetOf(() => rgb), 2e-5, `eps entry ${n}`);
    }
  });

  void it('unet_inject: blend 1 is the unet exactly; banks are the tokens of [x, control_0]; blend b moves the colour (1 − b) of the way to the bank colour', async () => {
    const plain = await session('unet');
    const inject = await session('unet_inject');
    const x = noise([1, 4, H, H], 5);
    const timestep = 321.6;
    const control0 = noise([1, 4, H, H], 6);
    const feeds = unetFeeds({ x, timestep, control0 });
    const banks = (tokensPerBank: number, fill: (l: number, i: number) => number) =>
      Object.fromEntries(Array.from({ length: 16 }, (_, l) => [`bank_in_${l}`, t(Array.from({ length: tokensPerBank * 8 }, (_, i) => fill(l, i)), [1, tokensPerBank, 8])]));
    const ref = (await plain.run(feeds)).model_output!;
    const write = await inject.run({ ...feeds, ...banks(1, () => 0), injection_blend: t([1], [1]) });
    assert.deepEqual(write.model_output!.data, ref.data, 'blend 1 with a zero token: the plain unet, bit for bit');
    for (let l = 0; l < 16; l++) {
      const bank = write[`bank_${l}`]!;
      assert.deepEqual(bank.dims, [1, H * H, 8], `bank_${l} shape`);
      for (const p of [0, 9, H * H - 1]) {
        const want = [...[0, 1, 2, 3].map((c) => x.data[c * H * H + p]!), ...[0, 1, 2, 3].map((c) => control0.data[c * H * H + p]!)];
        assert.deepEqual([...bank.data.subarray(p * 8, p * 8 + 8)], want, `bank_${l} token ${p}`);
      }
    }
    // A bank of 5 tokens (not h·w: the token axes are free) whose latent colour is (0.1, −0.2, 0.3)·S.
    const bankColour = [0.1, -0.2, 0.3];
    const blank = unetFeeds({ x, timestep });
    const read = async (b: number) =>
      denoised('v', x, (await inject.run({ ...blank, ...banks(5, (l, i) => (i % 8 < 3 ? S * bankColour[i % 8]! : 7)), injection_blend: t([b], [1]) })).model_output!, timestep);
    const base = denoised('v', x, (await plain.run(blank)).model_output!, timestep);
    for (const b of [0, 0.25]) {
      const got = await read(b);
      // The blank sketch (control −1 is "no line" after the clip) leaves every pixel colour: D = S·colour.
      const want = base.map((v, i) => (i < 3 * H * H ? v + (1 - b) * (S * bankColour[Math.floor(i / (H * H))]! - v) : v));
      allClose(got, want, 2e-5, `blend ${b}`);
    }
  });

  void it('sketch_mask: a closed black square outline is foreground inside, background outside', async () => {
    const s = await session('sketch_mask');
    // White paper, 2-px black outline of the square [62, 193].
    const onOutline = (y: number, x: number) =>
      y >= 62 && y <= 193 && x >= 62 && x <= 193 && (y <= 63 || y >= 192 || x <= 63 || x >= 192);
    const img = image(1, 256, 256, (y, x) => (onOutline(y, x) ? [-1, -1, -1] : [1, 1, 1]));
    const { mask } = await s.run({ image: img });
    assert.deepEqual(mask!.dims, [1, 1, 256, 256]);
    const m = (y: number, x: number) => mask!.data[y * 256 + x]!;
    for (const [y, x] of [[128, 128], [70, 70], [185, 100], [62, 62], [193, 128]] as const) assert.equal(m(y, x), 1, `inside/line ${y},${x}`);
    for (const [y, x] of [[0, 0], [10, 200], [255, 255], [128, 40], [200, 128]] as const) assert.equal(m(y, x), 0, `outside ${y},${x}`);

    // An open outline (gap in the top edge) leaks: the inside becomes background too.
    const open = image(1, 256, 256, (y, x) => (onOutline(y, x) && !(y <= 63 && x >= 120 && x < 136) ? [-1, -1, -1] : [1, 1, 1]));
    const leak = (await s.run({ image: open })).mask!;
    assert.equal(leak.data[128 * 256 + 128], 0);
    assert.equal(leak.data[62 * 256 + 62], 1);
  });

  void it('ref_mask: saturated colours are foreground, greys background', async () => {
    const s = await session('ref_mask');
    const img = normalise(
      image(1, 256, 256, (_y, x) => (x < 128 ? RED : [0.3, 0.3, 0.3])),
      IMAGENET_MEAN,
      IMAGENET_STD,
    );
    const { mask } = await s.run({ image: img });
    assert.deepEqual(mask!.dims, [1, 1, 256, 256]);
    close(mask!.data[10 * 256 + 10]!, 1, 1e-6, 'red');
    close(mask!.data[10 * 256 + 200]!, 1 / (1 + Math.exp(10)), 1e-6, 'grey');
    assert.ok(mask!.data[10 * 256 + 200]! < 1e-4);
  });

  void it('lineart: tanh(4·channel mean)', async () => {
    const s = await session('lineart');
    const img = image(1, 256, 256, (y) => (y < 128 ? [1, 1, 1] : [0.1, -0.2, 0.4]));
    const { lines } = await s.run({ image: img });
    assert.deepEqual(lines!.dims, [1, 1, 256, 256]);
    close(lines!.data[0]!, Math.tanh(4), 1e-6, 'white');
    close(lines!.data[200 * 256]!, Math.tanh(0.4), 1e-6, 'colour');
  });
});
