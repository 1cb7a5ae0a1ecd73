/**
 * k-diffusion style samplers (model contract §4.5–§4.6), transcribed from
 * `k_diffusion/sampling.py` (crowsonkb/k-diffusion): `to_d`, `get_ancestral_step`, `sample_euler`
 * (s_churn = 0), `sample_euler_ancestral`, `sample_dpmpp_2m`.
 *
 * Every sampler is `async (denoise, x, sigmas, opts?) => x`:
 * - `x` is the initial VE sample (already scaled by the plan's `initNoiseScale`), Float32Array or
 *   Float64Array. It is not modified; each step allocates a new array of the same type, so the
 *   result has the input's type. Per element the update is evaluated in float64 and stored in the
 *   array's precision (a Float32Array state is rounded to float32 after every step).
 * - `sigmas` is the descending noise-level list, normally ending in 0 (n steps = length − 1).
 * - `denoise(x, sigma, i)` returns D(x, σ_i) (any numeric array of x's length, or a Promise of one);
 *   `i` is the step index, so an orchestrator can look up the model timestep of step i. Samplers
 *   never keep a reference to `x` after the call nor rely on the returned array staying unchanged
 *   (DPM++ 2M copies what it keeps for the next step), so a denoiser may reuse its output buffer.
 * - `opts.signal` is checked before every step; when aborted the sampler throws
 *   `PipelineError('CANCELLED')`. `opts.onStep(i, n, info)` runs after step i (0-based) of n.
 */
import { PipelineError } from '../errors.ts';
import type { SampleArray } from './schedule.ts';

export type DenoiseResult = ArrayLike<number>;

/** D(x, σ): the (guided) denoised estimate at noise level `sigma` for step `i`. */
export type Denoiser<T extends SampleArray = SampleArray> = (
  x: T,
  sigma: number,
  i: number,
) => DenoiseResult | PromiseLike<DenoiseResult>;

export interface StepInfo<T extends SampleArray = SampleArray> {
  /** σ_i, the level this step denoised at. */
  sigma: number;
  /** σ_{i+1}, the level the new state is at. */
  sigmaNext: number;
  /** The state after the step (do not modify). */
  x: T;
  /** D(x_i, σ_i) as returned by the denoiser. */
  denoised: DenoiseResult;
}

export interface SamplerOptions {
  /** Called once after each step with the 0-based step index and the step count. */
  onStep?: (i: number, n: number, info: StepInfo) => void;
  /** Checked before every step; aborting makes the sampler throw PipelineError CANCELLED. */
  signal?: AbortSignal;
}

export interface AncestralOptions extends SamplerOptions {
  /** ε_i ~ N(0, 1), same length as x, for step i. Required unless η = 0 or s_noise = 0. */
  noise?: (i: number) => ArrayLike<number>;
  /** Ancestral η (1 = full ancestral step, 0 = plain Euler). Default 1. */
  eta?: number;
  /** Noise multiplier s_noise. Default 1. */
  sNoise?: number;
}

export type Sampler = <T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts?: AncestralOptions,
) => Promise<T>;

// ---------------------------------------------------------------------------------------------
// helpers

function allocLike<T extends SampleArray>(like: T): T {
  return (like instanceof Float32Array ? new Float32Array(like.length) : new Float64Array(like.length)) as T;
}

function checkSigmas(sigmas: ArrayLike<number>): number {
  if (sigmas.length < 1) throw new RangeError('sampler: sigmas is empty');
  const n = sigmas.length - 1;
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i];
    if (!Number.isFinite(s) || s < 0 || (i < n && s === 0)) {
      throw new RangeError(`sampler: sigmas[${i}] = ${s}; every sigma but the last must be finite and > 0`);
    }
  }
  return n;
}

function checkAbort(signal: AbortSignal | undefined, i: number): void {
  if (signal?.aborted) throw new PipelineError('CANCELLED', `cancelled at step ${i}`, undefined);
}

async function callDenoise<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigma: number,
  i: number,
): Promise<DenoiseResult> {
  const d = await denoise(x, sigma, i);
  if (!d || d.length !== x.length) {
    throw new RangeError(`sampler: denoiser returned ${d ? d.length : String(d)} values at step ${i}, expected ${x.length}`);
  }
  return d;
}

/** k-diffusion `to_d` for one element: (x − denoised)/σ. */
export const toD = (x: number, sigma: number, denoised: number): number => (x - denoised) / sigma;

/**
 * k-diffusion `get_ancestral_step(sigma_from, sigma_to, eta)`:
 * σ_up = min(σ_to, η·√(σ_to²(σ_from² − σ_to²)/σ_from²)), σ_down = √(σ_to² − σ_up²); η = 0 → (σ_to, 0).
 */
export function getAncestralStep(sigmaFrom: number, sigmaTo: number, eta = 1): { sigmaDown: number; sigmaUp: number } {
  if (!eta) return { sigmaDown: sigmaTo, sigmaUp: 0 };
  const sigmaUp = Math.min(sigmaTo, eta * ((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2) ** 0.5);
  const sigmaDown = (sigmaTo ** 2 - sigmaUp ** 2) ** 0.5;
  return { sigmaDown, sigmaUp };
}

// ---------------------------------------------------------------------------------------------
// samplers

/**
 * k-diffusion `sample_euler` with s_churn = 0 (so γ = 0, σ̂ = σ_i and no noise):
 * d = (x − D)/σ_i; x ← x + d·(σ_{i+1} − σ_i).
 */
export async function euler<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  let cur = x.slice() as T;
  for (let i = 0; i < n; i++) {
    checkAbort(opts.signal, i);
    const sigmaHat = sigmas[i];
    const denoised = await callDenoise(denoise, cur, sigmaHat, i);
    const dt = sigmas[i + 1] - sigmaHat;
    const next = allocLike(cur);
    for (let j = 0; j < next.length; j++) {
      const d = toD(cur[j], sigmaHat, denoised[j]);
      next[j] = cur[j] + d * dt;
    }
    cur = next;
    opts.onStep?.(i, n, { sigma: sigmas[i], sigmaNext: sigmas[i + 1], x: cur, denoised });
  }
  return cur;
}

/**
 * k-diffusion `sample_euler_ancestral(eta, s_noise, noise_sampler)`:
 * (σ_down, σ_up) = get_ancestral_step(σ_i, σ_{i+1}, η); x ← x + (x − D)/σ_i·(σ_down − σ_i);
 * if σ_{i+1} > 0: x ← x + ε_i·s_noise·σ_up.
 * Difference from k-diffusion (no effect on the result): ε_i is not requested when σ_up·s_noise = 0
 * (k-diffusion draws it and multiplies by 0); the noise is indexed by step, so skipping a draw does
 * not shift later draws.
 */
export async function euler_ancestral<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  let cur = x.slice() as T;
  for (let i = 0; i < n; i++) {
    checkAbort(opts.signal, i);
    const sigma = sigmas[i];
    const denoised = await callDenoise(denoise, cur, sigma, i);
    const { sigmaDown, sigmaUp } = getAncestralStep(sigma, sigmas[i + 1], eta);
    const dt = sigmaDown - sigma;
    let eps: ArrayLike<number> | undefined;
    if (sigmas[i + 1] > 0 && sigmaUp * sNoise !== 0) {
      if (!opts.noise) throw new TypeError('euler_ancestral: opts.noise is required when eta > 0 and s_noise > 0');
      eps = opts.noise(i);
      if (!eps || eps.length !== cur.length) {
        throw new RangeError(`euler_ancestral: noise(${i}) has ${eps ? eps.length : String(eps)} values, expected ${cur.length}`);
      }
    }
    const next = allocLike(cur);
    for (let j = 0; j < next.length; j++) {
      const d = toD(cur[j], sigma, denoised[j]);
      let v = cur[j] + d * dt;
      if (eps) v = v + eps[j] * sNoise * sigmaUp;
      next[j] = v;
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext: sigmas[i + 1], x: cur, denoised });
  }
  return cur;
}

/**
 * k-diffusion `sample_dpmpp_2m` (DPM-Solver++(2M), VE form), with σ(t) = e^{−t}, t(σ) = −log σ:
 * h = t_{i+1} − t_i; first step or σ_{i+1} = 0: x ← (σ(t_{i+1})/σ(t_i))·x − expm1(−h)·D_i;
 * otherwise r = (t_i − t_{i−1})/h, D' = (1 + 1/(2r))·D_i − (1/(2r))·D_{i−1},
 * x ← (σ(t_{i+1})/σ(t_i))·x − expm1(−h)·D'.
 * k-diffusion uses `(-h).expm1()` exactly as the contract asks (no difference). At σ_{i+1} = 0,
 * t_{i+1} = +∞, so the ratio is 0 and expm1(−∞) = −1: x = D_i, as in k-diffusion.
 */
export async function dpmpp_2m<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const sigmaFn = (t: number): number => Math.exp(-t);
  const tFn = (sigma: number): number => -Math.log(sigma);
  let cur = x.slice() as T;
  let oldDenoised: Float64Array | undefined;
  for (let i = 0; i < n; i++) {
    checkAbort(opts.signal, i);
    const denoised = await callDenoise(denoise, cur, sigmas[i], i);
    const t = tFn(sigmas[i]);
    const tNext = tFn(sigmas[i + 1]);
    const h = tNext - t;
    const ratio = sigmaFn(tNext) / sigmaFn(t);
    const em1 = Math.expm1(-h);
    const next = allocLike(cur);
    if (oldDenoised === undefined || sigmas[i + 1] === 0) {
      for (let j = 0; j < next.length; j++) next[j] = ratio * cur[j] - em1 * denoised[j];
    } else {
      const hLast = t - tFn(sigmas[i - 1]);
      const r = hLast / h;
      const a = 1 + 1 / (2 * r);
      const b = 1 / (2 * r);
      for (let j = 0; j < next.length; j++) {
        const denoisedD = a * denoised[j] - b * oldDenoised[j];
        next[j] = ratio * cur[j] - em1 * denoisedD;
      }
    }
    oldDenoised = Float64Array.from(denoised);
    cur = next;
    opts.onStep?.(i, n, { sigma: sigmas[i], sigmaNext: sigmas[i + 1], x: cur, denoised });
  }
  return cur;
}

/** The sampler methods a plan can name. */
export const SAMPLER_METHODS = ['euler', 'euler_ancestral', 'dpmpp_2m'] as const;
export type SamplerMethod = (typeof SAMPLER_METHODS)[number];

export const samplers: Record<SamplerMethod, Sampler> = { euler, euler_ancestral, dpmpp_2m };
