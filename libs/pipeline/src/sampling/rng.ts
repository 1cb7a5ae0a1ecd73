/**
 * The service's seeded Gaussian generator (model contract §4.8: the reference app's torch RNG
 * cannot be reproduced, so the service defines its own). Same (seed, stream) → same noise on every
 * machine.
 *
 * Algorithm (everything unsigned 32/64-bit with wrap-around; reimplementable in a few lines of Python):
 *
 * 1. Seeding — SplitMix64. Inputs: `seed` and `stream`, integers in [0, 2^32 − 1].
 *    state = seed·2^32 + stream (64-bit). Each SplitMix64 output is
 *    ```
 *    state = (state + 0x9E3779B97F4A7C15) mod 2^64
 *    z = state
 *    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod 2^64
 *    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod 2^64
 *    z =  z ^ (z >> 31)
 *    ```
 *    Two outputs o1, o2 give the xoshiro128** state
 *    s0 = o1 & 0xFFFFFFFF, s1 = o1 >> 32, s2 = o2 & 0xFFFFFFFF, s3 = o2 >> 32
 *    (never all zero: SplitMix64's output function is a bijection of distinct states).
 * 2. uint32 stream — xoshiro128** (Blackman & Vigna), all mod 2^32, rotl = rotate left:
 *    ```
 *    result = rotl(s1 * 5, 7) * 9
 *    t = s1 << 9
 *    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
 *    return result
 *    ```
 * 3. Uniform in (0, 1] from 53 bits: a = next() >> 5 (27 bits), b = next() >> 6 (26 bits),
 *    u = (a·2^26 + b + 1) / 2^53 (exact in float64; never 0, so log u is finite).
 * 4. Box–Muller, both outputs used: u1 = uniform(), u2 = uniform() (in that order),
 *    r = sqrt(−2·ln u1), θ = 2π·u2 (2π = 6.283185307179586), yield r·cos θ then r·sin θ.
 *    `nextGaussian()` returns the cos value and keeps the sin value for the next call.
 * 5. `gaussianNoise(seed, length, stream)` = the first `length` Gaussians of a fresh generator for
 *    (seed, stream), each rounded to float32 (an odd length discards the final sin value).
 *
 * Reproducibility: steps 1–3 are exact integer arithmetic. Step 4 uses ln/cos/sin: V8 (Node) computes
 * them with its own fdlibm port, so results are bit-identical on every machine running Node;
 * another runtime's libm may differ by 1 float64 ulp, which after rounding to float32 almost never
 * changes a value (check with a tolerance of 1 float32 ulp, not bit equality, across runtimes).
 *
 * `stream` selects an independent sequence for the same seed, e.g. frame k of a shot or step i of
 * an ancestral sampler (see `ancestralNoise`).
 *
 * A render's noise (`batchNoise`) is per batch item: item k's initial noise is stream k, and draw d
 * of the stochastic samplers for item k is stream 1000 + d + k·2^20 (`itemStepStream`). So item k
 * is the same whatever the batch around it — a batch of 4 and item k rendered alone agree — and
 * item 0 is what a single render always drew (streams 0 and 1000 + d).
 */
import { PipelineError } from '../errors.ts';

const MASK64 = (1n << 64n) - 1n;
const MAX_U32 = 0xffffffff;
const TWO_PI = 2 * Math.PI;
const TWO_POW_26 = 67108864;
const TWO_POW_NEG_53 = 1 / 9007199254740992;

function splitMix64(state: bigint): { state: bigint; out: bigint } {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  z = z ^ (z >> 31n);
  return { state: s, out: z };
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    if (what === 'seed') {
      throw new PipelineError('INVALID_KNOB', `seed must be an integer in 0..${MAX_U32}, got ${String(value)}`, 'settings.seed');
    }
    throw new RangeError(`${what} must be an integer in 0..${MAX_U32}, got ${String(value)}`);
  }
}

/** Seeded xoshiro128** generator with Box–Muller Gaussians (algorithm in the module comment). */
export class GaussianRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(
    readonly seed: number,
    readonly stream = 0,
  ) {
    checkU32(seed, 'seed');
    checkU32(stream, 'stream');
    const a = splitMix64((BigInt(seed) << 32n) | BigInt(stream));
    const b = splitMix64(a.state);
    this.s0 = Number(a.out & 0xffffffffn) | 0;
    this.s1 = Number(a.out >> 32n) | 0;
    this.s2 = Number(b.out & 0xffffffffn) | 0;
    this.s3 = Number(b.out >> 32n) | 0;
  }

  /**
   * A generator started from an explicit xoshiro128** state (uint32 words, not all zero), bypassing
   * the SplitMix64 seeding — for checking against published xoshiro128** test vectors.
   */
  static fromState(s0: number, s1: number, s2: number, s3: number): GaussianRng {
    if ((s0 | s1 | s2 | s3) === 0) throw new RangeError('xoshiro128** state must not be all zero');
    const rng = new GaussianRng(0, 0);
    rng.s0 = s0 | 0;
    rng.s1 = s1 | 0;
    rng.s2 = s2 | 0;
    rng.s3 = s3 | 0;
    return rng;
  }

  /** Next xoshiro128** output, an unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float64 in (0, 1] with 53 random bits: (a·2^26 + b + 1)/2^53. */
  nextUniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * TWO_POW_26 + b + 1) * TWO_POW_NEG_53;
  }

  /** Standard normal float64 (Box–Muller; alternates the cos and sin outputs of one pair). */
  nextGaussian(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const u1 = this.nextUniform();
    const u2 = this.nextUniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = TWO_PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fill `out` with successive Gaussians (rounded to the array's precision) and return it. */
  fill<T extends Float32Array | Float64Array>(out: T): T {
    for (let i = 0; i < out.length; i++) out[i] = this.nextGaussian();
    return out;
  }
}

/** `length` float32 standard-normal values for (seed, stream); identical on every machine. */
export function gaussianNoise(seed: number, length: number, stream = 0): Float32Array {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`gaussianNoise: bad length ${length}`);
  return new GaussianRng(seed, stream).fill(new Float32Array(length));
}

/**
 * A noise source for the stochastic samplers (`opts.noise`): draw k is
 * `gaussianNoise(seed, length, firstStream + k)`. Choose `firstStream` so it does not collide with
 * the stream used for the initial noise (e.g. initial noise on stream 0, draws on 1…); samplers ask
 * for k < 2n (`dpmpp_sde` uses n + i for its second draw) except `dpm_adaptive` (one per accepted
 * step, no fixed bound).
 */
export function ancestralNoise(seed: number, length: number, firstStream = 1): (i: number) => Float32Array {
  return (i: number) => gaussianNoise(seed, length, firstStream + i);
}

/** Stream of the first per-step draw of batch item 0 (its initial noise is stream 0). */
export const STEP_STREAM_BASE = 1000;
/** Stream distance between the per-step draws of consecutive batch items. */
export const ITEM_STREAM_STRIDE = 2 ** 20;
/** Highest batch item index: item k's initial noise is stream k, which must stay below STEP_STREAM_BASE. */
export const MAX_BATCH_ITEM = STEP_STREAM_BASE - 1;
/** Draws per item before its streams would run into the next item's. */
export const MAX_STEP_DRAWS = ITEM_STREAM_STRIDE - STEP_STREAM_BASE;

function checkItem(item: number): void {
  if (!Number.isInteger(item) || item < 0 || item > MAX_BATCH_ITEM) {
    throw new RangeError(`batch item must be an integer in 0..${MAX_BATCH_ITEM}, got ${String(item)}`);
  }
}

/** The stream of stochastic-sampler draw `draw` of batch item `item`: 1000 + draw + item·2^20. */
export function itemStepStream(item: number, draw: number): number {
  checkItem(item);
  if (!Number.isInteger(draw) || draw < 0 || draw >= MAX_STEP_DRAWS) {
    throw new RangeError(`noise draw must be an integer in 0..${MAX_STEP_DRAWS - 1}, got ${String(draw)}`);
  }
  return STEP_STREAM_BASE + draw + item * ITEM_STREAM_STRIDE;
}

/** The noise of one batch: `count` items of `perItem` values each, concatenated item by item. */
export interface BatchNoise {
  /** Initial noise (unit variance; the caller scales it): item b's part is stream firstItem + b. */
  initial: Float32Array;
  /**
   * `opts.noise` for the stochastic samplers: draw k, item b's part being stream
   * `itemStepStream(firstItem + b, k)`.
   */
  draw: (k: number) => Float32Array;
}

/**
 * Per-item noise for a batch of `count` items, items firstItem … firstItem + count − 1 of `seed`
 * (default 0…count − 1). Every item's noise depends only on (seed, item), so a batch's item k equals
 * item k rendered alone (`count` 1, `firstItem` k) whenever the sampler treats items independently
 * (every sampler but `dpm_adaptive`, whose step-size control looks at the whole batch).
 */
export function batchNoise(seed: number, perItem: number, count: number, firstItem = 0): BatchNoise {
  if (!Number.isInteger(perItem) || perItem < 0) throw new RangeError(`batchNoise: bad perItem ${perItem}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`batchNoise: bad count ${count}`);
  checkItem(firstItem);
  checkItem(firstItem + count - 1);
  const concat = (streamOf: (item: number) => number): Float32Array => {
    const out = new Float32Array(count * perItem);
    for (let b = 0; b < count; b++) out.set(gaussianNoise(seed, perItem, streamOf(firstItem + b)), b * perItem);
    return out;
  };
  return {
    initial: concat((item) => item),
    draw: (k: number) => concat((item) => itemStepStream(item, k)),
  };
}
