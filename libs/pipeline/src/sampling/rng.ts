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
