/**
 * Per-shot reuse (contract §2.3): everything that depends only on the reference side becomes one
 * {@link ReferenceContext} — CLIP tokens, reference mask, white-out reference tokens, background
 * features, style vectors, blank-sketch hints. Every frame of a shot reuses it; it serialises to
 * safetensors bytes under a content hash of its inputs, the pack and the knobs that affect it.
 */
import { createHash } from 'node:crypto';
import { PipelineError } from './errors.ts';
import {
  blankSketch,
  clamp01,
  clipPixels,
  crop,
  dilateMax,
  imagenetPixels,
  resizeBicubic,
  resizeBicubicAA,
  resizeBilinearAA,
  toUint8Levels,
  whiteOut,
} from './image/index.ts';
import { planar, type Planar } from './image/tensor.ts';
import type { Tensor } from './ort/runtime.ts';
import { CONTROL_NAMES, HS_BG_NAMES, refMaskGraph, STYLE_NAMES, type GraphName, type RefMaskNetwork } from './pack/contract.ts';
import { staticDim, type ModelPack } from './pack/loader.ts';
import type { PackManifest } from './pack/schema.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';
import type { ResolvedSettings } from './settings-schema.ts';
import { sizeEmbedding } from './size-embedding.ts';
import { fromPlanar, lerp, scale, toPlanar, zeros } from './tensors.ts';

export interface ReferenceInputs {
  /** Colour reference, [−1, 1] at native size. */
  reference?: Planar;
  /** Optional background image for background replacement, [−1, 1] at native size. */
  background?: Planar;
}

export interface ReferenceContext {
  /** Content hash (sha256 hex) of inputs + pack + the knobs below; the cache key. */
  key: string;
  pack: string;
  width: number;
  height: number;
  /** Split attention (FG or BG enhance) is active: frames need a sketch mask. */
  split: boolean;
  styleGate: 0 | 1;
  bgInjectGate: 0 | 1;
  loraGate: 0 | 1;
  /** Reference CLIP tokens [1, Lf, D]. */
  emb: Tensor;
  /** Background tokens for split attention [1, Lb, D] (E_bg, E_wr or emb), when split. */
  contextBg: Tensor | null;
  /** style_0..11, merged with the background's when one is given; when style enhance is on. */
  style: Tensor[] | null;
  /** hs_bg_0..11 × mask_scale; when BG enhance is on. */
  hsBg: Tensor[] | null;
  /** control_0..4 of the blank (all −1) sketch at H×W, unscaled; when sketch guidance is on. */
  blankControl: Tensor[] | null;
  /** Reference (or background, with remove-foreground) mask at native size [1, 1, oh, ow]. */
  referenceMask: Tensor | null;
  /**
   * Attention injection (docs/attention-injection.md), when on: z_r [1, 4, h, w] of the unpadded
   * reference stretched to H×W, and control_0..4 of that image negated (unscaled).
   */
  injection: { latent: Tensor; control: Tensor[] } | null;
}

/** The knobs a ReferenceContext depends on; everything else is per frame. */
export function contextKnobs(s: ResolvedSettings) {
  return {
    width: s.width,
    height: s.height,
    padScale: s.padScale,
    removeForeground: s.removeForeground,
    maskThresholdRef: s.maskThresholdRef,
    mergeScale: s.mergeScale,
    maskScale: s.maskScale,
    style: s.styleEnhance,
    bg: s.bgEnhance,
    fg: s.fgEnhance,
    sketchGuidance: s.sketchGuidanceScale > 1,
    injection: s.injection,
    // Only when it was chosen: contexts of earlier records (no choice) keep their keys.
    ...(s.referenceMaskExtractor ? { referenceMaskExtractor: s.referenceMaskExtractor } : {}),
  };
}

const hashPlanar = (h: ReturnType<typeof createHash>, p: Planar | undefined) => {
  if (!p) return h.update('none');
  h.update(`${p.channels}x${p.height}x${p.width}`);
  return h.update(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
};

/**
 * sha256 over the pack (id, version, graph hashes), the decoded images and the context knobs.
 * Needs only the manifest, so a process without ORT sessions can look a context up by it.
 */
export function referenceContextKey(manifest: PackManifest, settings: ResolvedSettings, inputs: ReferenceInputs): string {
  const h = createHash('sha256');
  h.update(`${manifest.id}@${manifest.version}\n`);
  // External-data files hold the weights of large graphs; a pack without them keeps its old keys.
  for (const [g, e] of Object.entries(manifest.graphs).sort()) {
    h.update(`${g}:${e.sha256}${(e.data ?? []).map((d) => `:${d.sha256}`).join('')}\n`);
  }
  h.update(JSON.stringify(contextKnobs(settings)));
  hashPlanar(h, inputs.reference);
  hashPlanar(h, inputs.background);
  return h.digest('hex');
}

/** Paste centred on a white canvas of width trunc(ow·padScale) (contract §2.1 step 2). */
export function padReference(img: Planar, padScale: number): Planar {
  if (padScale <= 1) return img;
  const W = Math.trunc(img.width * padScale);
  const out = planar(img.channels, img.height, W, 1);
  const left = Math.floor((W - img.width) / 2);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < img.height; y++) {
      const src = (c * img.height + y) * img.width;
      out.data.set(img.data.subarray(src, src + img.width), (c * img.height + y) * W + left);
    }
  }
  return out;
}

export class GraphRunner {
  constructor(readonly pack: ModelPack) {}

  async run(graph: GraphName, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const session = await this.pack.session(graph);
    return session.run(feeds);
  }

  /** G1: CLIP local tokens [1, L, D] of an image at native size. */
  async clip(img: Planar): Promise<Tensor> {
    const out = await this.run('clip_image', { pixels: fromPlanar(clipPixels(img, this.pack.manifest.inputs.clip)) });
    return out.local_tokens!;
  }

  /** G2: z = scale · mean of the image stretched to H×W (the mean stands in for a sample). */
  async encodeLatent(img: Planar, H: number, W: number): Promise<Tensor> {
    const stretched = img.height === H && img.width === W ? img : resizeBicubic(img, H, W);
    const out = await this.run('vae_encoder', { image: fromPlanar(stretched) });
    return scale(out.mean!, this.pack.manifest.latent.scale);
  }

  /**
   * G9: foreground mask at the image's native size, optionally dilated 11×11, clamped; by
   * `network` (default: the pack's `ref_mask`), from `ref_mask` or `ref_mask_<network>`.
   */
  async referenceMask(img: Planar, dilate: boolean, network?: RefMaskNetwork): Promise<Planar> {
    const { refMask: size, refMaskNetwork } = this.pack.manifest.inputs;
    const use = network ?? refMaskNetwork;
    const graph = refMaskGraph(use, refMaskNetwork);
    let m: Planar;
    if (use === 'isnet') {
      // Letterbox: scale by size / max side (bicubic by scale factor), centred on a −1 canvas,
      // then 1 − (x + 1)/2 — colours inverted, padding white — as the app feeds ISNet.
      const k = size / Math.max(img.height, img.width);
      const h = Math.trunc(img.height * k);
      const w = Math.trunc(img.width * k);
      const scaled = resizeBicubic(img, h, w, { h: k, w: k });
      const top = Math.floor((size - h) / 2);
      const left = Math.floor((size - w) / 2);
      const canvas = planar(img.channels, size, size, 1); // 1 − (−1 + 1)/2
      for (let c = 0; c < img.channels; c++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) canvas.data[(c * size + top + y) * size + left + x] = 1 - (scaled.data[(c * h + y) * w + x]! + 1) / 2;
        }
      }
      const full = toPlanar((await this.run(graph, { image: fromPlanar(canvas) })).mask!);
      m = resizeBicubic(crop(full, { left, top, width: w, height: h }), img.height, img.width);
      m = clamp01(m);
    } else {
      const out = await this.run(graph, { image: fromPlanar(imagenetPixels(img, size)) });
      m = resizeBilinearAA(toPlanar(out.mask!), img.height, img.width);
    }
    if (dilate) m = dilateMax(m, 11);
    return clamp01(m);
  }

  /** G4 on a model-convention sketch [−1, 1], H×W. */
  async control(sketch: Planar): Promise<Tensor[]> {
    const out = await this.run('control_encoder', { sketch: fromPlanar(sketch) });
    return CONTROL_NAMES.map((n) => out[n]!);
  }

  /** y width of the encoders (512 for v2), read from the graph. */
  async yDim(graph: 'bg_encoder' | 'style_encoder'): Promise<number> {
    return staticDim(await this.pack.session(graph), 'y', 1);
  }

  /** G5 or G6 with batch 1; feeds `timestep` = 0 when the graph exposes it. */
  async encoder(graph: 'bg_encoder' | 'style_encoder', latent: Tensor, y: Tensor, context: Tensor): Promise<Tensor[]> {
    const session = await this.pack.session(graph);
    const feeds: Record<string, Tensor> = { latent, y, context };
    if (session.inputs.some((i) => i.name === 'timestep')) feeds.timestep = zeros([1]);
    const out = await session.run(feeds);
    return (graph === 'bg_encoder' ? HS_BG_NAMES : STYLE_NAMES).map((n) => out[n]!);
  }
}

export interface PrepareOptions {
  signal?: AbortSignal;
}

function checkAborted(signal: AbortSignal | undefined, where: string) {
  if (signal?.aborted) throw new PipelineError('CANCELLED', `cancelled during ${where}`);
}

/** Builds the ReferenceContext for a shot (contract §2.1 steps 2–5 and §2.2). */
export async function prepareReference(
  pack: ModelPack,
  settings: ResolvedSettings,
  inputs: ReferenceInputs,
  options: PrepareOptions = {},
): Promise<ReferenceContext> {
  if (!inputs.reference) throw new PipelineError('MISSING_INPUT', 'a colour reference image is required', 'reference');
  const { width: W, height: H } = settings;
  const g = new GraphRunner(pack);
  const thr = settings.maskThresholdRef;
  const split = settings.bgEnhance || settings.fgEnhance;
  const ref = padReference(inputs.reference, settings.padScale);
  let background = inputs.background && padReference(inputs.background, settings.padScale);

  let rmask: Planar | null = null;
  if (split) {
    if (background && settings.removeForeground) {
      rmask = await g.referenceMask(background, true, settings.referenceMaskExtractor);
      background = whiteOut(background, rmask, thr);
    } else {
      rmask = await g.referenceMask(ref, true, settings.referenceMaskExtractor);
    }
  }
  checkAborted(options.signal, 'reference masks');
  const emb = await g.clip(ref);
  const eBg = background ? await g.clip(background) : null;
  checkAborted(options.signal, 'reference tokens');

  let style: Tensor[] | null = null;
  if (settings.styleEnhance) {
    const dim = await g.yDim('style_encoder');
    const zr = await g.encodeLatent(ref, H, W);
    const sRef = await g.encoder('style_encoder', zr, sizeEmbedding(ref.height, ref.width, H, W, dim), emb);
    style = sRef;
    if (background && eBg) {
      const zb = await g.encodeLatent(background, H, W);
      const yb = sizeEmbedding(background.height, background.width, H, W, dim);
      const sBg = await g.encoder('style_encoder', zb, yb, eBg);
      style = sRef.map((t, k) => lerp(t, sBg[k]!, settings.mergeScale));
    }
  }
  checkAborted(options.signal, 'style encoding');

  let hsBg: Tensor[] | null = null;
  let whiteOutTokens: Tensor | null = null;
  if (settings.bgEnhance) {
    const dim = await g.yDim('bg_encoder');
    let latent: Tensor;
    let y: Tensor;
    let context: Tensor;
    if (background && eBg) {
      latent = await g.encodeLatent(background, H, W);
      y = sizeEmbedding(background.height, background.width, H, W, dim);
      // Contract §2.2 quirk kept: with style enhance on, the bg encoder sees the reference tokens.
      context = settings.styleEnhance ? emb : eBg;
    } else {
      const wr = whiteOut(ref, rmask!, thr);
      latent = await g.encodeLatent(wr, H, W);
      y = sizeEmbedding(ref.height, ref.width, H, W, dim);
      context = emb;
      whiteOutTokens = await g.clip(wr);
    }
    hsBg = (await g.encoder('bg_encoder', latent, y, context)).map((t) => scale(t, settings.maskScale));
  }
  checkAborted(options.signal, 'background encoding');

  let contextBg: Tensor | null = null;
  if (settings.bgEnhance) contextBg = eBg ?? whiteOutTokens;
  else if (settings.fgEnhance) contextBg = settings.styleEnhance && eBg ? eBg : emb;

  const blankControl = settings.sketchGuidanceScale > 1 ? await g.control(blankSketch(H, W)) : null;
  const injection = settings.injection ? await injectionReference(g, inputs.reference, H, W) : null;
  checkAborted(options.signal, 'injection reference');

  return {
    key: referenceContextKey(pack.manifest, settings, inputs),
    pack: pack.ref,
    width: W,
    height: H,
    split,
    styleGate: settings.styleEnhance ? 1 : 0,
    bgInjectGate: settings.bgEnhance ? 1 : 0,
    loraGate: settings.bgEnhance ? 1 : 0,
    emb,
    contextBg,
    style,
    hsBg,
    blankControl,
    referenceMask: rmask ? fromPlanar(rmask) : null,
    injection,
  };
}

/**
 * The reference side of attention injection: the reference without padding, stretched to H×W as
 * the app's PIL resize does (antialiased bicubic, 8-bit levels), encoded to z_r (the VAE mean, as
 * every latent here) and, negated, to the control hints of the write pass.
 */
async function injectionReference(g: GraphRunner, reference: Planar, H: number, W: number): Promise<{ latent: Tensor; control: Tensor[] }> {
  const levels = toUint8Levels(resizeBicubicAA(reference, H, W, { alignCorners: false }));
  const r = planar(levels.channels, H, W);
  const neg = planar(levels.channels, H, W);
  for (let i = 0; i < r.data.length; i++) {
    r.data[i] = levels.data[i]! / 127.5 - 1;
    neg.data[i] = -r.data[i]!;
  }
  return { latent: await g.encodeLatent(r, H, W), control: await g.control(neg) };
}

const FLAGS = ['split', 'styleGate', 'bgInjectGate', 'loraGate'] as const;

/** Serialises a context to safetensors bytes (deterministic for the same context). */
export function serializeReferenceContext(ctx: ReferenceContext): Uint8Array {
  const tensors: Record<string, Tensor> = { emb: ctx.emb };
  if (ctx.contextBg) tensors.context_bg = ctx.contextBg;
  ctx.style?.forEach((t, k) => (tensors[STYLE_NAMES[k]!] = t));
  ctx.hsBg?.forEach((t, k) => (tensors[HS_BG_NAMES[k]!] = t));
  ctx.blankControl?.forEach((t, k) => (tensors[`blank_${CONTROL_NAMES[k]!}`] = t));
  if (ctx.referenceMask) tensors.reference_mask = ctx.referenceMask;
  if (ctx.injection) {
    tensors.inject_latent = ctx.injection.latent;
    ctx.injection.control.forEach((t, k) => (tensors[`inject_${CONTROL_NAMES[k]!}`] = t));
  }
  const metadata: Record<string, string> = {
    format: 'celfarm-reference-context@1',
    key: ctx.key,
    pack: ctx.pack,
    width: String(ctx.width),
    height: String(ctx.height),
  };
  for (const f of FLAGS) metadata[f] = String(Number(ctx[f]));
  return encodeSafetensors(tensors, metadata);
}

/** Loads a context; refuses one that belongs to another pack or is not a context. */
export function deserializeReferenceContext(bytes: Uint8Array, expectPack?: string): ReferenceContext {
  const { tensors, metadata } = decodeSafetensors(bytes, 'context');
  if (metadata.format !== 'celfarm-reference-context@1' || !tensors.emb) {
    throw new PipelineError('CONTEXT_INVALID', 'bytes are not a celfarm reference context', 'context');
  }
  if (expectPack && metadata.pack !== expectPack) {
    throw new PipelineError('CONTEXT_INVALID', `context was built with pack ${metadata.pack}, not ${expectPack}`, 'context');
  }
  const list = (names: readonly string[]) => (tensors[names[0]!] ? names.map((n) => tensors[n]!) : null);
  const bit = (f: (typeof FLAGS)[number]) => (metadata[f] === '1' ? 1 : 0) as 0 | 1;
  return {
    key: metadata.key ?? '',
    pack: metadata.pack ?? '',
    width: Number(metadata.width),
    height: Number(metadata.height),
    split: bit('split') === 1,
    styleGate: bit('styleGate'),
    bgInjectGate: bit('bgInjectGate'),
    loraGate: bit('loraGate'),
    emb: tensors.emb,
    contextBg: tensors.context_bg ?? null,
    style: list(STYLE_NAMES),
    hsBg: list(HS_BG_NAMES),
    blankControl: list(CONTROL_NAMES.map((n) => `blank_${n}`)),
    referenceMask: tensors.reference_mask ?? null,
    injection: tensors.inject_latent ? { latent: tensors.inject_latent, control: CONTROL_NAMES.map((n) => tensors[`inject_${n}`]!) } : null,
  };
}

