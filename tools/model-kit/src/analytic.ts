/**
 * The analytic pack: every graph of the model contract (shared/model-contract.md §1) with the
 * contract's graph and tensor names, but tiny (8-wide features instead of 1024) and with a
 * closed-form behaviour, so the pipeline's tests can assert exact outcomes on CPU.
 *
 * The behaviour of each graph is specified in tools/model-kit/README.md; this file is its
 * implementation. Nothing here is trained; building a pack takes well under a second.
 */
import { UNET_SCALAR_INPUTS, type GraphName } from '@celfarm/pipeline/pack/contract';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { GraphBuilder, type Dim } from './onnx-builder.ts';
import { writePack } from './pack-writer.ts';

/** Bumped whenever any analytic graph or the manifest changes; the CLI rebuilds stale packs. */
export const ANALYTIC_BUILDER = 'model-kit/analytic@5';
/** Attention sharpness of the analytic softmax pooling. */
export const KAPPA = 40;
/** Latent scale S (z = S · VAE mean). */
export const LATENT_SCALE = 0.18215;
/** Width of the analytic feature tokens (stands in for 1024 / 320 / … of the real model). */
export const FEATURE_WIDTH = 8;
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** Fixed input sizes of the analytic pack (pack.json `inputs`). */
export const ANALYTIC_INPUTS = { clip: 224, sketchMask: 256, refMask: 256, lineExtractor: 256 } as const;
/** Flood-fill iterations of the analytic sketch_mask (enough for any 64×64 region reachable in 128 steps). */
export const SKETCH_MASK_ITERATIONS = 128;

/** The graphs the analytic pack builds (the other line extractors are absent). */
export const ANALYTIC_GRAPHS = [
  'clip_image',
  'vae_encoder',
  'vae_decoder',
  'control_encoder',
  'bg_encoder',
  'style_encoder',
  'unet',
  'unet_inject',
  'sketch_mask',
  'ref_mask',
  'ref_mask_isnet',
  'lineart',
] as const satisfies readonly GraphName[];


export type Prediction = 'v' | 'eps';

export interface AnalyticPackOptions {
  /** Pack id; default `analytic` (v) or `analytic-eps` (eps). */
  id?: string;
  /** What the analytic UNet predicts; default `v`. */
  prediction?: Prediction;
  /** Graphs to leave out (to test packs with missing graphs); their files are removed. */
  omit?: GraphName[];
}

/**
 * The log-sigma table ℓ of contract §4.1: β in float64, ā (float64 cumulative product) stored as
 * float32, σ = √((1−ā)/ā) in float32 arithmetic, ℓ = log σ as float32. Ascending in i.
 */
export function logSigmaTable(): Float32Array {
  const n = 1000;
  const s0 = Math.sqrt(0.00085);
  const s1 = Math.sqrt(0.012);
  const out = new Float32Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    const beta = (s0 + ((s1 - s0) * i) / (n - 1)) ** 2;
    acc *= 1 - beta;
    const a = Math.fround(acc);
    const sigma = Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a)));
    out[i] = Math.log(sigma);
  }
  return out;
}

/** σ(t) exactly as the analytic UNet computes it (float64 here; the graph works in float32). */
export function sigmaOfT(t: number, table: Float32Array = logSigmaTable()): number {
  const tc = Math.min(999, Math.max(0, t));
  const lo = Math.floor(tc);
  const hi = Math.ceil(tc);
  const fr = tc - lo;
  return Math.exp((1 - fr) * table[lo]! + fr * table[hi]!);
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/** A [1,3,1,1] per-channel constant. */
const perChannel = (g: GraphBuilder, v: readonly number[]) => g.constant(Float32Array.from(v), [1, v.length, 1, 1]);

/**
 * Feature tokens of an RGB tensor [B,3,h,w] (already pooled to cells): [B,h·w,8] with
 * `[r, g, b, chroma, lightness, 1, 0, 0]` per cell, row-major over cells.
 */
function featureTokens(g: GraphBuilder, rgb: string): string {
  const chroma = g.sub(g.reduceMax(rgb, [1]), g.reduceMin(rgb, [1]));
  const light = g.reduceMean(rgb, [1]);
  const one = g.fill(light, 1);
  const zero = g.fill(light, 0);
  const feat = g.concat([rgb, chroma, light, one, zero, zero], 1); // [B,8,h,w]
  return g.transpose(g.reshape(feat, [0, FEATURE_WIDTH, -1]), [0, 2, 1]);
}

/** Σ_tokens softmax(sign·κ·tokens[...,key]) · tokens[...,0:3] → [N,3]. */
function softmaxPool(g: GraphBuilder, tokens: string, key: number, sign: 1 | -1): string {
  const logits = g.mul(g.slice(tokens, 2, key, key + 1), g.scalar(sign * KAPPA)); // [N,L,1]
  const w = g.op('Softmax', [logits], { axis: 1 });
  return g.reduceSum(g.mul(g.slice(tokens, 2, 0, 3), w), [1], 0);
}

/** latent[:,0:3] / S. */
const latentRgb = (g: GraphBuilder, latent: string) => g.div(g.slice(latent, 1, 0, 3), g.scalar(LATENT_SCALE));

const encoderInputs = (g: GraphBuilder) => ({
  latent: g.input('latent', ['B', 4, 'h', 'w']),
  y: g.input('y', ['B', 512]),
  context: g.input('context', ['B', 'L', FEATURE_WIDTH]),
});

const doc = (graph: string, text: string) =>
  `celfarm analytic pack (${ANALYTIC_BUILDER}), graph ${graph}: ${text} See tools/model-kit/README.md.`;

// ---------------------------------------------------------------------------------------------
// Graphs

function clipImage(): Uint8Array {
  const g = new GraphBuilder('clip_image');
  const p = g.input('pixels', ['B', 3, 224, 224]);
  const x = g.sub(g.mul(g.add(g.mul(p, perChannel(g, CLIP_STD)), perChannel(g, CLIP_MEAN)), g.scalar(2)), g.scalar(1));
  const tokens = featureTokens(g, g.avgPool(x, 56));
  g.output('local_tokens', tokens, ['B', 16, FEATURE_WIDTH]);
  g.output('pooled', g.reduceMean(tokens, [1], 0), ['B', FEATURE_WIDTH]);
  return g.build(18, doc('clip_image', 'feature tokens of the 4×4 average-pooled un-normalised image.'));
}

function vaeEncoder(): Uint8Array {
  const g = new GraphBuilder('vae_encoder');
  const image = g.input('image', ['B', 3, 'H', 'W']);
  const pooled = g.avgPool(image, 8);
  const mean = g.concat([pooled, g.fill(g.slice(pooled, 1, 0, 1), 0)], 1);
  g.output('mean', mean, ['B', 4, 'h', 'w']);
  g.output('logvar', g.fill(mean, -30), ['B', 4, 'h', 'w']);
  return g.build(18, doc('vae_encoder', 'mean = [avgpool8(image), 0], logvar = −30.'));
}

function vaeDecoder(): Uint8Array {
  const g = new GraphBuilder('vae_decoder');
  const latent = g.input('latent', ['B', 4, 'h', 'w']);
  g.output('image', g.upsampleNearest(g.slice(latent, 1, 0, 3), 8), ['B', 3, 'H', 'W']);
  return g.build(18, doc('vae_decoder', 'image = nearest ×8 of latent channels 0..2.'));
}

function controlEncoder(): Uint8Array {
  const g = new GraphBuilder('control_encoder');
  const sketch = g.input('sketch', ['B', 3, 'H', 'W']);
  const l0 = g.avgPool(g.reduceMean(sketch, [1]), 8); // [B,1,h,w]
  const l1 = g.avgPool(l0, 2);
  const l2 = g.avgPool(l0, 4);
  const l3 = g.avgPool(l0, 8);
  g.output('control_0', g.repeat(l0, 1, 4), ['B', 4, 'h', 'w']);
  g.output('control_1', g.repeat(l1, 1, 4), ['B', 4, 'h2', 'w2']);
  g.output('control_2', g.repeat(l2, 1, 8), ['B', 8, 'h4', 'w4']);
  const c3 = g.repeat(l3, 1, 8);
  g.output('control_3', c3, ['B', 8, 'h8', 'w8']);
  g.output('control_4', c3, ['B', 8, 'h8', 'w8']);
  return g.build(18, doc('control_encoder', 'channel-mean sketch average-pooled to each hint scale.'));
}

/** hs_bg_k pooling level: 3 for k 0–2, 2 for 3–5, 1 for 6–8, 0 for 9–11. */
export const hsBgLevel = (k: number): number => 3 - Math.floor(k / 3);

function bgEncoder(): Uint8Array {
  const g = new GraphBuilder('bg_encoder');
  const { latent } = encoderInputs(g);
  const rgb = latentRgb(g, latent);
  const byLevel = new Map<number, string>();
  for (let k = 0; k < 12; k++) {
    const level = hsBgLevel(k);
    let t = byLevel.get(level);
    if (!t) {
      t = featureTokens(g, g.avgPool(rgb, 2 ** level));
      byLevel.set(level, t);
    }
    g.output(`hs_bg_${k}`, t, ['B', `T${level}`, FEATURE_WIDTH]);
  }
  return g.build(18, doc('bg_encoder', 'feature tokens of latent[:,0:3]/S pooled by 2^level; y and context unused.'));
}

function styleEncoder(): Uint8Array {
  const g = new GraphBuilder('style_encoder');
  const { latent } = encoderInputs(g);
  const m = g.reduceMean(latentRgb(g, latent), [2, 3], 0); // [B,3]
  const zero = g.fill(g.slice(m, 1, 0, 1), 0); // [B,1]
  const scale = g.fill(m, -0.5); // [B,3]
  const style = g.concat([scale, zero, g.mul(m, g.scalar(0.5)), zero], 1); // [B,8]
  for (let k = 0; k < 12; k++) g.output(`style_${k}`, style, ['B', FEATURE_WIDTH]);
  return g.build(18, doc('style_encoder', 'scale −0.5, shift = half the mean colour of latent[:,0:3]/S.'));
}


/**
 * Declares the UNet's 43 contract inputs at the analytic widths (feature tokens 8 wide, control
 * widths 4/4/8/8/8, a symbolic token axis per hs_bg_k); shared with the bench pack's UNet.
 */
export function declareUnetInputs(g: GraphBuilder) {
  const x = g.input('x', ['N', 4, 'h', 'w']);
  const timestep = g.input('timestep', ['N']);
  const ctxFg = g.input('context_fg', ['N', 'Lf', FEATURE_WIDTH]);
  const ctxBg = g.input('context_bg', ['N', 'Lb', FEATURE_WIDTH]);
  const controlDims: Dim[][] = [
    ['N', 4, 'h', 'w'],
    ['N', 4, 'h2', 'w2'],
    ['N', 8, 'h4', 'w4'],
    ['N', 8, 'h8', 'w8'],
    ['N', 8, 'h8', 'w8'],
  ];
  const controls = controlDims.map((d, i) => g.input(`control_${i}`, d));
  const hsBg = Array.from({ length: 12 }, (_, k) => g.input(`hs_bg_${k}`, ['N', `T_${k}`, FEATURE_WIDTH]));
  const styles = Array.from({ length: 12 }, (_, k) => g.input(`style_${k}`, ['N', FEATURE_WIDTH]));
  const mask = g.input('mask', ['N', 1, 'h', 'w']);
  const refScales = g.input('ref_scales', [16]);
  const sc = Object.fromEntries(UNET_SCALAR_INPUTS.map((n) => [n, g.input(n, [])])) as Record<
    (typeof UNET_SCALAR_INPUTS)[number],
    string
  >;

  return { x, timestep, ctxFg, ctxBg, controls, hsBg, styles, mask, refScales, sc };
}

function unet(prediction: Prediction, inject = false): Uint8Array {
  const g = new GraphBuilder(inject ? 'unet_inject' : 'unet');
  const { x, timestep, ctxFg, ctxBg, controls, hsBg, styles, mask, refScales, sc } = declareUnetInputs(g);
  const banksIn = inject ? Array.from({ length: 16 }, (_, l) => g.input(`bank_in_${l}`, ['N', `B_${l}`, FEATURE_WIDTH])) : [];
  const blend = inject ? g.input('injection_blend', ['N']) : '';
  const one = g.scalar(1);
  const toMap = (v: string) => g.unsqueeze(v, [2, 3]); // [N,3] → [N,3,1,1]

  // Reference colours.
  const s = g.reduceMean(refScales, [0], 0);
  const fg0 = g.mul(g.mul(softmaxPool(g, ctxFg, 3, 1), s), sc.fg_scale);
  const bgc = g.mul(g.mul(softmaxPool(g, ctxBg, 4, -1), s), sc.bg_scale);
  const fgc = g.add(g.mul(g.sub(one, sc.merge_scale), fg0), g.mul(sc.merge_scale, bgc));

  // Mask split.
  const fgsel = g.op('Greater', [mask, sc.mask_threshold]); // bool [N,1,h,w]
  let colour = g.op('Where', [fgsel, toMap(fgc), toMap(bgc)]); // [N,3,h,w]

  // Warp injection (background side only).
  const wc = toMap(softmaxPool(g, hsBg[11]!, 4, -1));
  const warped = g.add(colour, g.mul(sc.bg_inject_gate, g.sub(wc, colour)));
  colour = g.op('Where', [fgsel, colour, warped]);

  // Style modulation.
  const scale = toMap(g.slice(styles[11]!, 1, 0, 3));
  const shift = toMap(g.slice(styles[11]!, 1, 4, 7));
  colour = g.add(colour, g.mul(sc.style_gate, g.add(g.mul(colour, scale), shift)));

  if (inject) {
    // Banks out: every block's "normalised input" is the tokens of [x, control_0] (8 wide).
    const bank = g.transpose(g.reshape(g.concat([x, controls[0]!], 1), [0, FEATURE_WIDTH, -1]), [0, 2, 1]);
    for (let l = 0; l < 16; l++) g.output(`bank_${l}`, g.op('Identity', [bank]), ['N', 'hw', FEATURE_WIDTH]);
    // Banked attention: the colour moves towards the mean colour of bank_in_0's latent tokens,
    // (1 − blend) of the way (blend 1: exactly the plain colour).
    const bc = toMap(g.div(g.reduceMean(g.slice(banksIn[0]!, 2, 0, 3), [1], 0), g.scalar(LATENT_SCALE)));
    const w = g.sub(one, g.unsqueeze(blend, [1, 2, 3]));
    colour = g.add(colour, g.mul(w, g.sub(bc, colour)));
  }

  // Black lines from the sketch hint.
  // Gain 2 (not 1): a cell a stroke crosses goes fully black, so guidance (which amplifies
  // colour) cannot wash thin lines out.
  const ink = g.clip(g.add(g.slice(controls[0]!, 1, 0, 1), one), 0, 1);
  const rgb = g.sub(g.mul(g.sub(one, ink), colour), ink);
  const target = g.mul(g.concat([rgb, g.fill(ink, 0)], 1), g.scalar(LATENT_SCALE)); // [N,4,h,w]

  // σ(t) from the log-sigma table, α and σ̂.
  const table = g.constant(logSigmaTable(), [1000]);
  const tc = g.clip(timestep, 0, 999);
  const lo = g.op('Floor', [tc]);
  const hi = g.op('Ceil', [tc]);
  const fr = g.sub(tc, lo);
  const lLo = g.op('Gather', [table, g.cast(lo, 'int64')], { axis: 0 });
  const lHi = g.op('Gather', [table, g.cast(hi, 'int64')], { axis: 0 });
  const logSigma = g.add(g.mul(g.sub(one, fr), lLo), g.mul(fr, lHi));
  const sigma = g.unsqueeze(g.op('Exp', [logSigma]), [1, 2, 3]); // [N,1,1,1]
  const alpha = g.div(one, g.op('Sqrt', [g.add(g.mul(sigma, sigma), one)]));
  const sigmaHat = g.mul(sigma, alpha);

  const out =
    prediction === 'v'
      ? g.div(g.sub(g.mul(alpha, x), target), sigmaHat)
      : g.div(g.sub(x, g.mul(alpha, target)), sigmaHat);
  g.output('model_output', out, ['N', 4, 'h', 'w']);
  return g.build(
    18,
    inject
      ? doc('unet_inject', `the unet graph plus attention-injection banks (tokens of [x, control_0]) and their blend.`)
      : doc('unet', `${prediction}-prediction towards a closed-form denoised latent; LoRA gates have no effect.`),
  );
}

function sketchMask(): Uint8Array {
  const size = ANALYTIC_INPUTS.sketchMask;
  const cells = size / 4;
  const g = new GraphBuilder('sketch_mask');
  const image = g.input('image', ['B', 3, size, size]);
  const grey = g.reduceMean(image, [1]);
  const darkest = g.op('Neg', [g.maxPool(g.op('Neg', [grey]), 4)]); // min-pool 4×4 → [B,1,64,64]
  const paper = g.cast(g.op('Greater', [darkest, g.scalar(0)]), 'float');
  const ring = new Float32Array(cells * cells);
  for (let i = 0; i < cells; i++) {
    for (let j = 0; j < cells; j++) {
      if (i === 0 || j === 0 || i === cells - 1 || j === cells - 1) ring[i * cells + j] = 1;
    }
  }
  let outside = g.mul(paper, g.constant(ring, [1, 1, cells, cells]));
  for (let it = 0; it < SKETCH_MASK_ITERATIONS; it++) outside = g.op('Min', [g.maxPool(outside, 3, 1, 1), paper]);
  const mask = g.upsampleNearest(g.sub(g.scalar(1), outside), 4);
  g.output('mask', mask, ['B', 1, size, size]);
  return g.build(18, doc('sketch_mask', 'lines and enclosed paper are foreground (flood fill from the border).'));
}

function refMask(): Uint8Array {
  const size = ANALYTIC_INPUTS.refMask;
  const g = new GraphBuilder('ref_mask');
  const p = g.input('image', ['B', 3, size, size]);
  const x = g.sub(g.mul(g.add(g.mul(p, perChannel(g, IMAGENET_STD)), perChannel(g, IMAGENET_MEAN)), g.scalar(2)), g.scalar(1));
  const chroma = g.sub(g.reduceMax(x, [1]), g.reduceMin(x, [1]));
  const mask = g.op('Sigmoid', [g.mul(g.sub(chroma, g.scalar(0.5)), g.scalar(20))]);
  g.output('mask', mask, ['B', 1, size, size]);
  return g.build(18, doc('ref_mask', 'sigmoid(20·(chroma − 0.5)).'));
}

/** ISNet's input: the letterboxed canvas 1 − (x + 1)/2 in [0, 1] (colours inverted, padding 1). */
function refMaskIsnet(): Uint8Array {
  const size = ANALYTIC_INPUTS.refMask;
  const g = new GraphBuilder('ref_mask_isnet');
  const c = g.input('image', ['B', 3, size, size]);
  // x = 1 − 2c, so chroma(x) = 2·chroma(c): the same mask as ref_mask gives the same colours.
  const chroma = g.mul(g.sub(g.reduceMax(c, [1]), g.reduceMin(c, [1])), g.scalar(2));
  const mask = g.op('Sigmoid', [g.mul(g.sub(chroma, g.scalar(0.5)), g.scalar(20))]);
  g.output('mask', mask, ['B', 1, size, size]);
  return g.build(18, doc('ref_mask_isnet', 'ISNet-style input (letterboxed, inverted to [0, 1]); sigmoid(20·(2·chroma − 0.5)).'));
}

function lineart(): Uint8Array {
  const size = ANALYTIC_INPUTS.lineExtractor;
  const g = new GraphBuilder('lineart');
  const image = g.input('image', [1, 3, size, size]);
  g.output('lines', g.op('Tanh', [g.mul(g.reduceMean(image, [1]), g.scalar(4))]), [1, 1, size, size]);
  return g.build(18, doc('lineart', 'tanh(4·channel mean).'));
}

/** Serialised ONNX bytes of every analytic graph. */
export function analyticGraphs(prediction: Prediction = 'v'): Record<(typeof ANALYTIC_GRAPHS)[number], Uint8Array> {
  return {
    clip_image: clipImage(),
    vae_encoder: vaeEncoder(),
    vae_decoder: vaeDecoder(),
    control_encoder: controlEncoder(),
    bg_encoder: bgEncoder(),
    style_encoder: styleEncoder(),
    unet: unet(prediction),
    unet_inject: unet(prediction, true),
    sketch_mask: sketchMask(),
    ref_mask: refMask(),
    ref_mask_isnet: refMaskIsnet(),
    lineart: lineart(),
  };
}

export const analyticDescription = (prediction: Prediction): string =>
  `Analytic test pack (${prediction}-prediction): tiny closed-form graphs with the contract's names, ` +
  `no trained weights; behaviour in tools/model-kit/README.md. builder=${ANALYTIC_BUILDER}`;

/**
 * Writes `<graph>.onnx` for every analytic graph (minus `omit`) and then `pack.json` into
 * `outDir` (created if missing). Returns the parsed manifest.
 */
export async function buildAnalyticPack(outDir: string, opts: AnalyticPackOptions = {}): Promise<PackManifest> {
  const prediction = opts.prediction ?? 'v';
  const id = opts.id ?? (prediction === 'v' ? 'analytic' : 'analytic-eps');
  const omit = new Set<GraphName>(opts.omit ?? []);
  const all = analyticGraphs(prediction) as Partial<Record<GraphName, Uint8Array>>;
  const bytes = Object.fromEntries(Object.entries(all).filter(([name]) => !omit.has(name as GraphName)));
  return writePack(outDir, bytes, {
    id,
    version: '1.0.0',
    description: analyticDescription(prediction),
    licence: {
      name: 'MIT',
      text: 'Analytic test pack generated by celfarm model-kit; no trained weights.',
      commercialUse: true,
    },
    prediction,
    latent: { factor: 8, channels: 4, scale: LATENT_SCALE },
    size: { multiple: 64, min: 64, max: 1024, default: 128 },
    inputs: { ...ANALYTIC_INPUTS, refMaskNetwork: 'rmbg' },
    // The only line extractor this pack has, so `preprocessor: 'extract'` works without naming it.
    defaults: { lineExtractor: 'lineart' },
  });
}

/**
 * The analytic attention in plain TypeScript, for tests that predict outputs: the colour that
 * Σ softmax(sign·κ·token[feature])·token[0:3] gives over the tokens of batch entry 0 of a
 * [B, L, 8] tensor. feature 3 with sign +1 is the UNet's foreground attention (the most chromatic
 * colour); feature 4 with sign −1 its background and warp attention (the darkest colour).
 */
export function analyticAttention(tokens: { data: Float32Array; dims: number[] }, feature: 3 | 4, sign: 1 | -1): number[] {
  const [, L, D] = tokens.dims as [number, number, number];
  const scores = Array.from({ length: L }, (_, i) => sign * KAPPA * tokens.data[i * D + feature]!);
  const max = Math.max(...scores);
  const w = scores.map((s) => Math.exp(s - max));
  const sum = w.reduce((a, b) => a + b, 0);
  const out = [0, 0, 0];
  for (let i = 0; i < L; i++) for (let c = 0; c < 3; c++) out[c]! += (w[i]! / sum) * tokens.data[i * D + c]!;
  return out;
}
