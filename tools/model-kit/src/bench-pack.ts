/**
 * The bench pack: the analytic pack's cheap graphs (clip_image, vae_encoder, vae_decoder,
 * control_encoder) plus a `unet` with RANDOM weights that does real work, so a bench of the
 * pipeline measures orchestration against a UNet that costs tens of milliseconds per call, like a
 * (much smaller) real one.
 *
 * The UNet takes exactly the contract's 43 inputs with the analytic UNet's names, ranks and widths
 * (so the orchestrator feeds it as it feeds the analytic pack) and computes, on x [N,4,h,w]:
 *
 *   temb  = MLP(sinusoid(timestep))                         [N,C]
 *   h     = conv3×3(x, 4→C) + conv1×1(control_0, 4→C) + temb
 *   h     = h + conv3×3(SiLU(IN(conv3×3(SiLU(IN(h))) + temb)))   × blocks
 *   h     = h + SelfAttention(IN(h))  over the h·w tokens, `heads` heads
 *   h     = h + mean(ref_scales) · CrossAttention(IN(h), context_fg)
 *   out   = conv3×3(SiLU(IN(h)), C→4)                      → model_output [N,4,h,w]
 *
 * IN = InstanceNormalization (per-channel, keeps activations O(1) whatever the weights), weights
 * uniform with variance 1/fan_in from a seeded generator: the output is deterministic, finite
 * and O(1), so samplers can iterate on it. Every other input is declared and ignored.
 */
import type { GraphName } from '@celfarm/pipeline/pack/contract';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { ANALYTIC_BUILDER, ANALYTIC_INPUTS, FEATURE_WIDTH, LATENT_SCALE, analyticGraphs, declareUnetInputs } from './analytic.ts';
import { GraphBuilder } from './onnx-builder.ts';
import { packIsCurrent, writePack } from './pack-writer.ts';

/** Bumped whenever the bench UNet or the manifest changes; the CLI rebuilds stale packs. */
export const BENCH_BUILDER = 'model-kit/bench@1';

/** Channel width C of the bench UNet (sized for ~50–200 ms per call at 64×64 latent, N = 2, 2 CPU cores). */
export const BENCH_WIDTH = 128;
/** Residual conv blocks. */
export const BENCH_BLOCKS = 4;
/** Attention heads (C must be a multiple). */
export const BENCH_HEADS = 2;
/** Seed of the weight generator. */
export const BENCH_SEED = 0x5eed_0010;

/** Graphs of the bench pack: what a vanilla frame needs, plus the (cheap) VAE encoder. */
export const BENCH_GRAPHS = ['clip_image', 'vae_encoder', 'vae_decoder', 'control_encoder', 'unet'] as const satisfies readonly GraphName[];

export interface BenchPackOptions {
  /** Pack id; default `bench`. */
  id?: string;
  /** Channel width C of the UNet; default {@link BENCH_WIDTH}. */
  width?: number;
}

export interface BenchUnetOptions {
  width?: number;
  blocks?: number;
  heads?: number;
  seed?: number;
}

/** Deterministic uniform generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ONNX bytes of the random-weight bench UNet. */
export function benchUnet(opts: BenchUnetOptions = {}): Uint8Array {
  const C = opts.width ?? BENCH_WIDTH;
  const blocks = opts.blocks ?? BENCH_BLOCKS;
  const heads = opts.heads ?? BENCH_HEADS;
  if (C % heads !== 0) throw new Error(`bench UNet width ${C} is not a multiple of ${heads} heads`);
  const dh = C / heads;
  const rand = seededRandom(opts.seed ?? BENCH_SEED);
  const g = new GraphBuilder('unet');

  /** Uniform weights with variance gain/fan_in. */
  const weights = (dims: number[], fanIn: number, gain = 1): string => {
    const n = dims.reduce((a, b) => a * b, 1);
    const bound = Math.sqrt((3 * gain) / fanIn);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * bound;
    return g.constant(data, dims);
  };
  const vec = (n: number, v: number) => g.constant(new Float32Array(n).fill(v), [n]);
  const conv = (x: string, cin: number, cout: number, k: number, gain = 1) =>
    g.op('Conv', [x, weights([cout, cin, k, k], cin * k * k, gain), weights([cout], cin * k * k, 0.1)], {
      kernel_shape: [k, k],
      pads: [k >> 1, k >> 1, k >> 1, k >> 1],
    });
  const silu = (x: string) => g.mul(x, g.op('Sigmoid', [x]));
  const norm = (x: string) => g.op('InstanceNormalization', [x, vec(C, 1), vec(C, 0)], { epsilon: 1e-5 });
  const linear = (x: string, cin: number, cout: number, gain = 1) => g.op('MatMul', [x, weights([cin, cout], cin, gain)]);

  const { x, timestep, ctxFg: contextFg, controls, refScales } = declareUnetInputs(g);
  const control0 = controls[0]!;

  // Timestep embedding: sinusoid (64 wide) → Linear → SiLU → Linear → [N,C,1,1].
  const half = 32;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const targ = g.mul(g.unsqueeze(timestep, [1]), g.constant(freqs, [1, half])); // [N,32]
  const sinus = g.concat([g.op('Cos', [targ]), g.op('Sin', [targ])], 1); // [N,64]
  const temb = g.unsqueeze(linear(silu(linear(sinus, 2 * half, C)), C, C), [2, 3]); // [N,C,1,1]

  // Stem: x and the finest sketch hint.
  let h = g.add(g.add(conv(x, 4, C, 3), conv(control0, 4, C, 1)), temb);

  // Residual conv blocks.
  for (let b = 0; b < blocks; b++) {
    const tb = g.unsqueeze(linear(silu(g.reshape(temb, [0, C])), C, C), [2, 3]);
    const r1 = g.add(conv(silu(norm(h)), C, C, 3), tb);
    h = g.add(h, conv(silu(norm(r1)), C, C, 3, 0.5));
  }

  /** [N,C,h,w] → tokens [N,L,C]. */
  const tokensOf = (t: string) => g.transpose(g.reshape(t, [0, C, -1]), [0, 2, 1]);
  /** [N,L,C] → [N,heads,L,dh]. */
  const split = (t: string) => g.transpose(g.reshape(t, [0, -1, heads, dh]), [0, 2, 1, 3]);
  /** Multi-head attention of query tokens q [N,L,C] over kv tokens [N,M,width]; returns [N,C,h,w] like `like`. */
  const attention = (q: string, kv: string, kvWidth: number, like: string) => {
    const Q = split(linear(q, C, C));
    const K = g.transpose(g.reshape(linear(kv, kvWidth, C), [0, -1, heads, dh]), [0, 2, 3, 1]); // [N,H,dh,M]
    const V = split(linear(kv, kvWidth, C));
    const scores = g.mul(g.op('MatMul', [Q, K]), g.scalar(1 / Math.sqrt(dh))); // [N,H,L,M]
    const p = g.op('Softmax', [scores], { axis: -1 });
    const o = g.reshape(g.transpose(g.op('MatMul', [p, V]), [0, 2, 1, 3]), [0, -1, C]); // [N,L,C]
    const proj = linear(o, C, C, 0.5);
    return g.op('Reshape', [g.transpose(proj, [0, 2, 1]), g.op('Shape', [like])]);
  };

  // Self-attention over the h·w tokens.
  const sTok = tokensOf(norm(h));
  h = g.add(h, attention(sTok, sTok, C, h));

  // Cross-attention over the reference tokens, scaled by the mean reference scale.
  const s = g.reduceMean(refScales, [0], 0);
  h = g.add(h, g.mul(attention(tokensOf(norm(h)), contextFg, FEATURE_WIDTH, h), s));

  // Head.
  const out = conv(silu(norm(h)), C, 4, 3);
  g.output('model_output', out, ['N', 4, 'h', 'w']);
  return g.build(
    18,
    `celfarm bench pack (${BENCH_BUILDER}), graph unet: random weights (seed ${opts.seed ?? BENCH_SEED}), ` +
      `width ${C}, ${blocks} residual blocks, self-attention (${heads} heads) over h·w tokens, cross-attention ` +
      'over context_fg; inputs other than x, timestep, context_fg, control_0 and ref_scales are ignored.',
  );
}

export const benchDescription = (width: number): string =>
  `Bench pack: the analytic pack's clip/VAE/control graphs and a random-weight UNet (width ${width}) ` +
  `that costs real compute; for benchmarks only, its images mean nothing. analytic=${ANALYTIC_BUILDER} ` +
  `builder=${BENCH_BUILDER} width=${width}`;

/**
 * Writes `<graph>.onnx` for every bench graph and then `pack.json` into `outDir` (created if
 * missing). Returns the parsed manifest.
 */
export async function buildBenchPack(outDir: string, opts: BenchPackOptions = {}): Promise<PackManifest> {
  const id = opts.id ?? 'bench';
  const width = opts.width ?? BENCH_WIDTH;

  const analytic = analyticGraphs('v');
  const bytes: Record<(typeof BENCH_GRAPHS)[number], Uint8Array> = {
    clip_image: analytic.clip_image,
    vae_encoder: analytic.vae_encoder,
    vae_decoder: analytic.vae_decoder,
    control_encoder: analytic.control_encoder,
    unet: benchUnet({ width }),
  };
  return writePack(outDir, bytes, {
    id,
    version: '1.0.0',
    description: benchDescription(width),
    licence: {
      name: 'MIT',
      text: 'Bench pack generated by celfarm model-kit; random weights, no trained model.',
      commercialUse: true,
    },
    prediction: 'v',
    latent: { factor: 8, channels: 4, scale: LATENT_SCALE },
    size: { multiple: 64, min: 64, max: 1536, default: 512 },
    inputs: { ...ANALYTIC_INPUTS, refMaskNetwork: 'rmbg' },
    defaults: {},
  });
}

/**
 * True when `dir/pack.json` exists, was written by this builder version (and analytic builder
 * version) with this width, and every file's hash matches.
 */
export function isBenchPackCurrent(dir: string, width: number = BENCH_WIDTH): Promise<boolean> {
  const tag = `analytic=${ANALYTIC_BUILDER} builder=${BENCH_BUILDER} width=${width}`;
  return packIsCurrent(dir, (m) => m.description.endsWith(tag));
}
