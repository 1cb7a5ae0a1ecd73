/**
 * Frame orchestration (contract §2): sketch preprocessing and fit, sketch mask, control hints,
 * the sampling loop with batched classifier-free guidance, VAE decode, crop and optional
 * background removal. Pure orchestration over {@link ModelPack} sessions; no I/O besides ORT.
 * Settings arrive resolved against this pack (settings.ts, once, at the edge) and are taken as
 * given: nothing here checks them or the pack's graphs again.
 */
import { PipelineError } from './errors.ts';
import { combineGuidance, guidanceLayout, referenceActive, relativeStep, type Branch } from './guidance.ts';
import {
  blankSketch,
  crop,
  extractorCanvas,
  extractorInput,
  extractorLines,
  fitLetterbox,
  floodFillForeground,
  invertWebui,
  maskToLatent,
  preprocessSketch,
  resizeBicubic,
  toRgb,
  type Box,
} from './image/index.ts';
import { planar, type Planar } from './image/tensor.ts';
import type { Tensor } from './ort/runtime.ts';
import { BANK_IN_NAMES, BANK_NAMES, CONTROL_NAMES, HS_BG_NAMES, STYLE_NAMES } from './pack/contract.ts';
import { staticDim, type ModelPack } from './pack/loader.ts';
import { GraphRunner, prepareReference, type ReferenceContext, type ReferenceInputs } from './reference.ts';
import { batchNoise, discreteSchedule, gaussianNoise, modelScalings, modelTimestep, planSampling, samplers } from './sampling/index.ts';
import type { ResolvedSettings } from './settings-schema.ts';
import { concatBatch, filled, fromPlanar, scalar, scale, tile, toPlanar, zeros } from './tensors.ts';

export type Stage = 'prepare' | 'preprocess' | 'mask' | 'encode' | 'sample' | 'decode' | 'postprocess';

export interface Progress {
  stage: Stage;
  /** Sampler step (1-based) during `sample`; 0 otherwise. */
  step: number;
  steps: number;
}

export interface FrameOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /**
   * The seed's item index of the batch's first image (default 0): the batch renders items
   * firstItem … firstItem + batchSize − 1, each from its own noise (`batchNoise`), so one item of
   * an earlier batch can be rendered again alone (batchSize 1, firstItem k). At most 999.
   */
  firstItem?: number;
}

export interface FrameResult {
  /** One image per batch item, [−1, 1], H×W (or the crop box size when cropping). */
  images: Planar[];
  /** Where the sketch sits inside H×W (the letterbox). */
  box: Box;
  /** Sketch mask at latent size when split attention ran (for previews / storage). */
  sketchMask: Planar | null;
  seed: number;
  /** Seconds per stage, for metrics. */
  timings: Partial<Record<Stage, number>>;
}

const now = () => performance.now() / 1000;

/** Sketch → model convention (white lines on black), fitted into H×W with the letterbox. */
async function prepareSketch(g: GraphRunner, s: ResolvedSettings, sketch: Planar): Promise<{ image: Planar; box: Box }> {
  if (s.preprocessor === 'extract') {
    // The extractor's S×S result is resized once, straight to the sketch's fitted size (G10).
    const size = g.pack.manifest.inputs.lineExtractor;
    const canvas = extractorCanvas(sketch, size);
    const out = await g.run(s.lineExtractor, { image: extractorInput(s.lineExtractor, canvas) });
    return fitLetterbox(toRgb(extractorLines(s.lineExtractor, out.lines!)), s.height, s.width, sketch);
  }
  const pre = s.preprocessor === 'invert-webui' ? invertWebui(sketch) : preprocessSketch(sketch, s.preprocessor);
  return fitLetterbox(pre, s.height, s.width);
}

/** Soft sketch mask at latent size [1, 1, h, w] (G8, or the flood-fill fallback). */
async function sketchMask(g: GraphRunner, s: ResolvedSettings, sketch: Planar): Promise<Planar> {
  const factor = g.pack.manifest.latent.factor;
  if (!g.pack.has('sketch_mask')) return maskToLatent(floodFillForeground(sketch), s.height, s.width, factor);
  const size = g.pack.manifest.inputs.sketchMask;
  const white = planar(sketch.channels, sketch.height, sketch.width);
  for (let i = 0; i < white.data.length; i++) white.data[i] = -sketch.data[i]!;
  const out = await g.run('sketch_mask', { image: fromPlanar(resizeBicubic(white, size, size)) });
  return maskToLatent(toPlanar(out.mask!), s.height, s.width, factor);
}

interface UnetFeeds {
  feeds: Record<string, Tensor>;
  layout: Branch[];
}

/** Everything the UNet gets that stays fixed across steps, for one reference-active state. */
async function staticFeeds(
  pack: ModelPack,
  s: ResolvedSettings,
  ctx: ReferenceContext,
  control: Tensor[],
  mask: Planar | null,
  active: boolean,
): Promise<UnetFeeds> {
  const unet = await pack.session('unet');
  const layout = guidanceLayout(s.guidanceScale, s.sketchGuidanceScale);
  const bs = s.batchSize;
  const N = layout.length * bs;
  const D = staticDim(unet, 'context_fg', 2);
  const h = s.height / pack.manifest.latent.factor;
  const w = s.width / pack.manifest.latent.factor;

  const perBranch = (make: (b: Branch) => Tensor) => concatBatch(layout.map((b) => tile(make(b), bs)));
  const zeroToken = zeros([N, 1, D]);
  const feeds: Record<string, Tensor> = {};
  if (active) {
    feeds.context_fg = perBranch((b) => (b === 'U_ref' ? zeros(ctx.emb.dims) : ctx.emb));
    const bg = ctx.split ? ctx.contextBg : null;
    feeds.context_bg = bg ? perBranch((b) => (b === 'U_ref' ? zeros(bg.dims) : bg)) : zeroToken;
  } else {
    feeds.context_fg = zeroToken;
    feeds.context_bg = zeroToken;
  }
  const blank = ctx.blankControl?.map((t) => scale(t, s.controlScale));
  CONTROL_NAMES.forEach((name, k) => {
    feeds[name] = perBranch((b) => (b === 'U_sk' ? blank![k]! : control[k]!));
  });
  HS_BG_NAMES.forEach((name, k) => {
    feeds[name] = ctx.hsBg ? tile(ctx.hsBg[k]!, N) : zeros([N, 1, staticDim(unet, name, 2)]);
  });
  STYLE_NAMES.forEach((name, k) => {
    feeds[name] = ctx.style ? tile(ctx.style[k]!, N) : zeros([N, staticDim(unet, name, 1)]);
  });
  feeds.mask = ctx.split && mask ? tile(fromPlanar(mask), N) : filled([N, 1, h, w], 1);
  feeds.mask_threshold = scalar(ctx.split ? s.maskThresholdSketch : 0.5);
  feeds.ref_scales = { data: Float32Array.from(s.refScales), dims: [16] };
  feeds.fg_scale = scalar(ctx.split ? s.fgStrength : 1);
  feeds.bg_scale = scalar(s.bgStrength);
  feeds.merge_scale = scalar(ctx.split ? s.mergeScale : 0);
  feeds.lora_fg_gate = scalar(ctx.loraGate);
  feeds.lora_bg_gate = scalar(ctx.loraGate);
  feeds.style_gate = scalar(ctx.styleGate);
  feeds.bg_inject_gate = scalar(ctx.bgInjectGate);
  return { feeds, layout };
}

/** First stream of the write pass's noise (evaluation e draws stream 2^31 + e): above every sampler's. */
export const INJECTION_STREAM_BASE = 2 ** 31;

/** Half to even, as torch.round. */
const roundHalfEven = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

let sqrtAlphas: { signal: Float64Array; noise: Float64Array } | undefined;
/** √ā_k and √(1 − ā_k) from the float64 cumulative product, as the app's q_sample buffers. */
function qSampleScales(): { signal: Float64Array; noise: Float64Array } {
  if (sqrtAlphas) return sqrtAlphas;
  const { betas } = discreteSchedule();
  const signal = new Float64Array(betas.length);
  const noise = new Float64Array(betas.length);
  let prod = 1;
  for (let k = 0; k < betas.length; k++) {
    prod *= 1 - betas[k]!;
    signal[k] = Math.fround(Math.sqrt(prod));
    noise[k] = Math.fround(Math.sqrt(1 - prod));
  }
  return (sqrtAlphas = { signal, noise });
}

/**
 * The write pass x_w = √ā_k·z_r + √(1 − ā_k)·ε, k = round(t), ε = one [1, 4, h, w] draw for
 * evaluation e of the render (docs/attention-injection.md).
 */
export function injectionSample(zr: Tensor, t: number, seed: number, e: number): Float32Array {
  const k = Math.min(999, Math.max(0, roundHalfEven(t)));
  const { signal, noise } = qSampleScales();
  const eps = gaussianNoise(seed, zr.data.length, INJECTION_STREAM_BASE + e);
  const out = new Float32Array(zr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = signal[k]! * zr.data[i]! + noise[k]! * eps[i]!;
  return out;
}

/**
 * Attention injection's two passes per UNet evaluation: the write pass over the noised reference
 * (its hints the reference's, ×injectionFidelitySketch; blend 1 with one zero token per bank, i.e.
 * plain self-attention) records the banks; the real call then attends to them, the
 * reference-unconditional entries blending in plain self-attention by injectionFidelityReference.
 */
async function injectionPasses(pack: ModelPack, s: ResolvedSettings, ctx: ReferenceContext, layout: Branch[]) {
  if (!ctx.injection) throw new PipelineError('CONTEXT_INVALID', 'the reference context was built without attention injection', 'context');
  const { latent, control } = ctx.injection;
  const session = await pack.session('unet_inject');
  const N = layout.length * s.batchSize;
  const writeFeeds: Record<string, Tensor> = { injection_blend: filled([N], 1) };
  CONTROL_NAMES.forEach((name, k) => (writeFeeds[name] = tile(scale(control[k]!, s.injectionFidelitySketch), N)));
  BANK_IN_NAMES.forEach((name) => (writeFeeds[name] = zeros([N, 1, staticDim(session, name, 2)])));
  const cfg = s.injectionFidelityReference > 1e-5 ? s.injectionFidelityReference : 0;
  const blend = concatBatch(layout.map((b) => filled([s.batchSize], b === 'U_ref' ? cfg : 0)));
  return {
    async run(feeds: Record<string, Tensor>, t: number, e: number): Promise<Record<string, Tensor>> {
      const xw = tile({ data: injectionSample(latent, t, s.seed, e), dims: latent.dims }, N);
      const written = await session.run({ ...feeds, ...writeFeeds, x: xw });
      const read: Record<string, Tensor> = { ...feeds, injection_blend: blend };
      BANK_IN_NAMES.forEach((name, l) => (read[name] = written[BANK_NAMES[l]!]!));
      return session.run(read);
    },
  };
}

/** Colorizes one sketch with a prepared reference context. */
export async function colorizeFrame(
  pack: ModelPack,
  s: ResolvedSettings,
  ctx: ReferenceContext,
  sketch: Planar,
  options: FrameOptions = {},
): Promise<FrameResult> {
  if (ctx.pack !== pack.ref) {
    throw new PipelineError('CONTEXT_INVALID', `context was built with pack ${ctx.pack}, this is ${pack.ref}`, 'context');
  }
  if (ctx.width !== s.width || ctx.height !== s.height) {
    throw new PipelineError('CONTEXT_INVALID', `context is ${ctx.width}×${ctx.height}, settings ask ${s.width}×${s.height}`, 'context');
  }
  const { signal, onProgress } = options;
  const timings: Partial<Record<Stage, number>> = {};
  const plan = planSampling({ sampler: s.sampler, scheduler: s.scheduler, steps: s.steps });
  const steps = plan.sigmas.length - 1;
  const report = (stage: Stage, step = 0) => onProgress?.({ stage, step, steps });
  const stop = (where: string) => {
    if (signal?.aborted) throw new PipelineError('CANCELLED', `cancelled during ${where}`);
  };
  const g = new GraphRunner(pack);
  const { factor, channels, scale: latentScale } = pack.manifest.latent;
  const H = s.height;
  const W = s.width;
  const h = H / factor;
  const w = W / factor;

  let t0 = now();
  report('preprocess');
  const fitted = await prepareSketch(g, s, sketch);
  timings.preprocess = now() - t0;
  stop('preprocess');

  t0 = now();
  let mask: Planar | null = null;
  if (ctx.split) {
    report('mask');
    mask = await sketchMask(g, s, fitted.image);
  }
  timings.mask = now() - t0;
  stop('mask');

  t0 = now();
  report('encode');
  const control = (await g.control(fitted.image)).map((t) => scale(t, s.controlScale));
  if (s.sketchGuidanceScale > 1 && !ctx.blankControl) {
    ctx = { ...ctx, blankControl: await g.control(blankSketch(H, W)) };
  }
  const feedsActive = await staticFeeds(pack, s, ctx, control, mask, true);
  const needInactive = s.guidanceStart > 0 || s.guidanceEnd < 1;
  const feedsInactive = needInactive ? await staticFeeds(pack, s, ctx, control, mask, false) : feedsActive;
  timings.encode = now() - t0;
  stop('encode');

  t0 = now();
  const bs = s.batchSize;
  const per = channels * h * w;
  // Per-item noise: item k is the same in any batch (initial noise and every sampler draw).
  const noise = batchNoise(s.seed, per, bs, options.firstItem ?? 0);
  const x = new Float32Array(bs * per);
  for (let k = 0; k < x.length; k++) x[k] = noise.initial[k]! * plan.initNoiseScale;
  const unet = await pack.session('unet');
  const layout = feedsActive.layout;
  const N = layout.length * bs;
  const inject = s.injection ? await injectionPasses(pack, s, ctx, layout) : null;
  let evaluation = 0;
  const denoise = async (xv: Float32Array, sigma: number, i: number): Promise<Float32Array> => {
    const t = modelTimestep(plan, sigma, i);
    const { cIn, cSkip, cOut } = modelScalings(sigma, pack.manifest.prediction);
    const xin = new Float32Array(xv.length);
    for (let k = 0; k < xv.length; k++) xin[k] = xv[k]! * cIn;
    const base = referenceActive(t, s.guidanceStart, s.guidanceEnd) ? feedsActive : feedsInactive;
    const feeds = {
      ...base.feeds,
      x: tile({ data: xin, dims: [bs, channels, h, w] }, layout.length),
      timestep: filled([N], t),
    };
    const e = evaluation++;
    const out = inject && relativeStep(t) >= s.injectionStartStep ? await inject.run(feeds, t, e) : await unet.run(feeds);
    const model = combineGuidance(out.model_output!.data, layout, bs * per, s.guidanceScale, s.sketchGuidanceScale);
    const d = new Float32Array(xv.length);
    for (let k = 0; k < d.length; k++) d[k] = cSkip * xv[k]! + cOut * model[k]!;
    return d;
  };
  const sampler = samplers[plan.method];
  const z = (await sampler(denoise, x, plan.sigmas, {
    noise: noise.draw,
    signal,
    prediction: pack.manifest.prediction,
    onStep: (i: number) => report('sample', i + 1),
  })) as Float32Array;
  timings.sample = now() - t0;
  stop('sample');

  t0 = now();
  report('decode');
  // z·c_in(σ_n): the VP sample (PNDM ends at σ_min; every other plan at 0, where this is z).
  const latent = new Float32Array(z.length);
  for (let k = 0; k < z.length; k++) latent[k] = (z[k]! * plan.decodeScale) / latentScale;
  const decoded = (await g.run('vae_decoder', { latent: { data: latent, dims: [bs, channels, h, w] } })).image!;
  timings.decode = now() - t0;

  t0 = now();
  report('postprocess');
  const images: Planar[] = [];
  for (let b = 0; b < bs; b++) {
    let img = toPlanar(decoded, b);
    for (let k = 0; k < img.data.length; k++) img.data[k] = Math.min(1, Math.max(-1, img.data[k]!));
    // The app removes the background on the full decoded frame, then crops (contract §10).
    if (s.removeBackground) {
      const m = await g.referenceMask(img, false, s.referenceMaskExtractor);
      const hw = img.height * img.width;
      for (let p = 0; p < hw; p++) {
        if (m.data[p]! < s.maskThresholdRef) for (let c = 0; c < img.channels; c++) img.data[c * hw + p] = 1;
      }
    }
    if (s.crop) img = crop(img, fitted.box);
    images.push(img);
  }
  timings.postprocess = now() - t0;
  return { images, box: fitted.box, sketchMask: mask, seed: s.seed, timings };
}

export interface ColorizeInputs extends ReferenceInputs {
  sketch: Planar;
}

/** One request end to end: reference context, then the frame. */
export async function colorize(
  pack: ModelPack,
  s: ResolvedSettings,
  inputs: ColorizeInputs,
  options: FrameOptions = {},
): Promise<FrameResult & { context: ReferenceContext }> {
  if (!inputs.sketch) throw new PipelineError('MISSING_INPUT', 'a sketch image is required', 'sketch');
  options.onProgress?.({ stage: 'prepare', step: 0, steps: s.steps });
  const t0 = now();
  const context = await prepareReference(pack, s, inputs, { signal: options.signal });
  const prepareSeconds = now() - t0;
  const result = await colorizeFrame(pack, s, context, inputs.sketch, options);
  return { ...result, timings: { prepare: prepareSeconds, ...result.timings }, context };
}
