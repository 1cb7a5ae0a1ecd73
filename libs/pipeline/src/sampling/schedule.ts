/**
 * The discrete noise schedule shared by every sampler (model contract §4.1) and the model wrapper
 * scalings that turn a UNet output into a denoised estimate.
 *
 * Reference: CompVis LDM `register_schedule` (scaled-linear betas built in float64 by
 * `torch.linspace(√β_start, √β_end, 1000, dtype=float64) ** 2`, cumulative product in float64,
 * stored as a float32 buffer) and k-diffusion's `DiscreteSchedule` / `CompVisDenoiser`
 * (`sigmas = ((1 − ā)/ā) ** 0.5` computed on that float32 buffer).
 *
 * Deliberate precision choice: the log-sigma table is `Math.log` (float64) of the float32 sigma
 * values, where k-diffusion keeps `log_sigmas` as float32. That makes `sigmaToT(table[i]) === i`
 * exactly; the difference to the reference is below 1e-7 relative.
 */

export const NUM_TRAIN_TIMESTEPS = 1000;
export const BETA_START = 0.00085;
export const BETA_END = 0.012;

/** Model output parameterisation: ColorizeDiffusion v2 is `v`; `eps` is kept for other packs. */
export type Prediction = 'v' | 'eps';

/** A latent (or any sample) buffer; samplers compute in the precision of the array they get. */
export type SampleArray = Float32Array | Float64Array;

export interface DiscreteSchedule {
  /** β_i, float64. */
  readonly betas: Float64Array;
  /** ā_i = Π_{k≤i}(1 − β_k), computed in float64 and stored as float32 (like the reference). */
  readonly alphasCumprod: Float32Array;
  /** VE sigma table σ_i = √((1 − ā_i)/ā_i), computed in float32 arithmetic from ā. Ascending in i. */
  readonly sigmas: Float32Array;
  /** ℓ_i = log σ_i (float64 log of the float32 sigma). Ascending in i. */
  readonly logSigmas: Float64Array;
}

/**
 * `torch.linspace(start, end, n)` as ATen computes it on the CPU (symmetric: the first half counts
 * up from `start`, the second half down from `end`), in float64. n = 1 gives `[start]`.
 */
export function linspace(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  const halfway = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < halfway ? start + step * i : end - step * (n - i - 1);
  return out;
}

let cached: DiscreteSchedule | undefined;

/** The shared discrete schedule, computed once and cached (the arrays are frozen by convention: do not write). */
export function discreteSchedule(): DiscreteSchedule {
  if (cached) return cached;
  const n = NUM_TRAIN_TIMESTEPS;
  const ramp = linspace(Math.sqrt(BETA_START), Math.sqrt(BETA_END), n);
  const betas = new Float64Array(n);
  const alphasCumprod = new Float32Array(n);
  const sigmas = new Float32Array(n);
  const logSigmas = new Float64Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) {
    betas[i] = ramp[i] * ramp[i];
    prod *= 1 - betas[i];
    const ac = Math.fround(prod);
    alphasCumprod[i] = ac;
    // float32 arithmetic: each operation rounded to float32 (float64 intermediates round exactly).
    const oneMinus = Math.fround(1 - ac);
    const ratio = Math.fround(oneMinus / ac);
    sigmas[i] = Math.fround(Math.sqrt(ratio));
    logSigmas[i] = Math.log(sigmas[i]);
  }
  cached = { betas, alphasCumprod, sigmas, logSigmas };
  return cached;
}

/** σ_0 ≈ 0.0291675 (float32 table value). */
export const SIGMA_MIN: number = discreteSchedule().sigmas[0];
/** σ_999 ≈ 14.614642 (float32 table value). */
export const SIGMA_MAX: number = discreteSchedule().sigmas[NUM_TRAIN_TIMESTEPS - 1];

/**
 * σ → continuous model time t (k-diffusion `DiscreteSchedule.sigma_to_t`, quantize = False):
 * lo = the largest i with ℓ_i ≤ log σ (0 if none), clamped to ≤ 998; hi = lo + 1;
 * w = clamp((ℓ_lo − log σ)/(ℓ_lo − ℓ_hi), 0, 1); t = (1 − w)·lo + w·hi.
 * σ = 0 gives t = 0 (log 0 = −∞ → w clamps to 0).
 */
export function sigmaToT(sigma: number): number {
  const { logSigmas } = discreteSchedule();
  const logSigma = Math.log(sigma);
  if (Number.isNaN(logSigma)) return Number.NaN;
  // Binary search for the count of ℓ_i ≤ log σ (ℓ ascending).
  let a = 0;
  let b = logSigmas.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (logSigmas[m] <= logSigma) a = m + 1;
    else b = m;
  }
  // `dists.ge(0).cumsum().argmax()` = index of the last true, or 0 when none is true.
  const lo = Math.min(Math.max(a - 1, 0), logSigmas.length - 2);
  const hi = lo + 1;
  const low = logSigmas[lo];
  const high = logSigmas[hi];
  let w = (low - logSigma) / (low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lo + w * hi;
}

/**
 * Continuous model time t ∈ [0, 999] → σ (k-diffusion `DiscreteSchedule.t_to_sigma`):
 * σ = exp((1 − frac t)·ℓ_⌊t⌋ + frac t·ℓ_⌈t⌉).
 */
export function tToSigma(t: number): number {
  const { logSigmas } = discreteSchedule();
  if (!(t >= 0 && t <= logSigmas.length - 1)) throw new RangeError(`tToSigma: t=${t} outside [0, ${logSigmas.length - 1}]`);
  const lowIdx = Math.floor(t);
  const highIdx = Math.ceil(t);
  const w = t - lowIdx;
  return Math.exp((1 - w) * logSigmas[lowIdx] + w * logSigmas[highIdx]);
}

/** α(σ) = 1/√(σ² + 1): the VP signal scale, also the UNet input scale c_in. */
export const alphaOfSigma = (sigma: number): number => 1 / Math.sqrt(sigma * sigma + 1);

export interface ModelScalings {
  /** Scale applied to the VE sample before the UNet: x_in = x·c_in (= the VP sample). */
  cIn: number;
  cSkip: number;
  cOut: number;
}

/**
 * Model-wrapper scalings at σ (σ_data = 1).
 * - `v` (k-diffusion `DiscreteVDDPMDenoiser`): c_in = 1/√(σ²+1), c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1).
 * - `eps` (`DiscreteEpsDDPMDenoiser`): c_in = 1/√(σ²+1), c_skip = 1, c_out = −σ.
 */
export function modelScalings(sigma: number, prediction: Prediction = 'v'): ModelScalings {
  const s2 = sigma * sigma + 1;
  const cIn = 1 / s2 ** 0.5;
  if (prediction === 'eps') return { cIn, cSkip: 1, cOut: -sigma };
  return { cIn, cSkip: 1 / s2, cOut: -sigma / s2 ** 0.5 };
}

function allocLike<T extends SampleArray>(like: T, n: number): T {
  return (like instanceof Float32Array ? new Float32Array(n) : new Float64Array(n)) as T;
}

/**
 * The denoised estimate D(x, σ) from the raw model output (same array type as `x`):
 * v: D = c_skip·x + c_out·v; eps: D = x − σ·ε.
 */
export function denoisedFromModelOutput<T extends SampleArray>(
  x: T,
  modelOut: ArrayLike<number>,
  sigma: number,
  prediction: Prediction = 'v',
): T {
  if (modelOut.length !== x.length) {
    throw new RangeError(`denoisedFromModelOutput: model output has ${modelOut.length} values, x has ${x.length}`);
  }
  const out = allocLike(x, x.length);
  if (prediction === 'eps') {
    for (let j = 0; j < x.length; j++) out[j] = x[j] - sigma * modelOut[j];
  } else {
    const { cSkip, cOut } = modelScalings(sigma, 'v');
    for (let j = 0; j < x.length; j++) out[j] = x[j] * cSkip + modelOut[j] * cOut;
  }
  return out;
}

/** x·c_in(σ): the variance-preserving UNet input for a VE sample (same array type). */
export function scaleModelInput<T extends SampleArray>(x: T, sigma: number): T {
  const cIn = alphaOfSigma(sigma);
  const out = allocLike(x, x.length);
  for (let j = 0; j < x.length; j++) out[j] = x[j] * cIn;
  return out;
}
