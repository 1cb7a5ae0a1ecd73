/**
 * What every sampler shares: the sampler signature, its options, and the small helpers of
 * k-diffusion (`to_d`, `get_ancestral_step`) plus argument checks. The samplers themselves live in
 * `samplers-ode.ts`, `samplers-stochastic.ts` and `dpm-solver.ts`; `samplers.ts` is the registry.
 */
import { PipelineError } from '../errors.ts';
import type { Prediction, SampleArray } from './schedule.ts';

export type DenoiseResult = ArrayLike<number>;

/**
 * D(x, σ): the (guided) denoised estimate at noise level `sigma`. `i` is the step during which the
 * call happens; two-stage samplers call it a second time in the same step at an intermediate σ.
 */
export type Denoiser<T extends SampleArray = SampleArray> = (
  x: T,
  sigma: number,
  i: number,
) => DenoiseResult | PromiseLike<DenoiseResult>;

export interface StepInfo<T extends SampleArray = SampleArray> {
  /** σ_i, the level this step started from. */
  sigma: number;
  /** σ_{i+1}, the level the new state is at. */
  sigmaNext: number;
  /** The state after the step (do not modify). */
  x: T;
  /** D(x_i, σ_i), the first denoiser result of the step. */
  denoised: DenoiseResult;
}

export interface SamplerOptions {
  /**
   * Called once per step, after it, with (i, n): i + 1 of n units of work are done, so
   * `(i + 1)/n` is the progress. For fixed-step samplers i is the step index and n the step count
   * (two-stage samplers still report once per step). `dpm_fast` reports after each solver step
   * with i + 1 = model evaluations so far (n of them in all); `dpm_adaptive` reports accepted steps
   * as i + 1 = ⌊n·(progress in log σ)⌋, only when that advances, ending with i = n − 1.
   */
  onStep?: (i: number, n: number, info: StepInfo) => void;
  /** Checked before every denoiser call; aborting makes the sampler throw PipelineError CANCELLED. */
  signal?: AbortSignal;
  /**
   * The parameterisation of the model behind the denoiser (default `v`, ColorizeDiffusion v2).
   * Only `pndm` reads it: diffusers' PNDM mixes the raw model outputs before turning them into ε,
   * so it recovers them from D (D = c_skip·x + c_out·m) and needs to know what m is.
   */
  prediction?: Prediction;
}

export interface AncestralOptions extends SamplerOptions {
  /**
   * Independent ε ~ N(0, 1) draws, same length as x; a distinct index must give independent noise.
   * Step i asks for `noise(i)`; a sampler that needs a second independent draw in step i
   * (`dpmpp_sde`) asks for `noise(n + i)` (n = step count), `dpm_adaptive` uses the index of the
   * accepted step. Required when the sampler adds noise (η > 0 and s_noise > 0).
   */
  noise?: (i: number) => ArrayLike<number>;
  /** η of the stochastic samplers (1 = the app's setting; 0 = no noise). Default 1. */
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

export function allocLike<T extends SampleArray>(like: T): T {
  return (like instanceof Float32Array ? new Float32Array(like.length) : new Float64Array(like.length)) as T;
}

/** Checks a descending-use sigma list (every entry finite, all but the last > 0); returns the step count. */
export function checkSigmas(sigmas: ArrayLike<number>): number {
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

export function checkAbort(signal: AbortSignal | undefined, i: number): void {
  if (signal?.aborted) throw new PipelineError('CANCELLED', `cancelled at step ${i}`, undefined);
}

/** Checks the abort signal, calls the denoiser and checks the length of what it returns. */
export async function callDenoise<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigma: number,
  i: number,
  signal: AbortSignal | undefined,
): Promise<DenoiseResult> {
  checkAbort(signal, i);
  const d = await denoise(x, sigma, i);
  if (!d || d.length !== x.length) {
    throw new RangeError(`sampler: denoiser returned ${d ? d.length : String(d)} values at step ${i}, expected ${x.length}`);
  }
  return d;
}

/** `opts.noise(k)`, checked: present and of x's length. */
export function drawNoise(opts: AncestralOptions, k: number, length: number, who: string): ArrayLike<number> {
  if (!opts.noise) throw new TypeError(`${who}: opts.noise is required when eta > 0 and s_noise > 0`);
  const eps = opts.noise(k);
  if (!eps || eps.length !== length) {
    throw new RangeError(`${who}: noise(${k}) has ${eps ? eps.length : String(eps)} values, expected ${length}`);
  }
  return eps;
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
