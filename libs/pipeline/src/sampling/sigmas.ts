/**
 * Sigma (VE noise level) schedules, named after k-diffusion's `get_sigmas_*` (model contract §4.3).
 * Every function returns a Float64Array of n + 1 descending values ending in 0. They are computed
 * in float64 (k-diffusion builds its ramps with float32 `torch.linspace`; the difference is below
 * 1e-6 relative and immaterial next to a float32 UNet).
 */
import { linspace, NUM_TRAIN_TIMESTEPS, SIGMA_MAX, SIGMA_MIN, sigmaToT, tToSigma } from './schedule.ts';

function checkN(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`sigma schedule: n must be an integer ≥ 1, got ${n}`);
}

/** `append_zero`: copy `values` into a Float64Array with one trailing 0. */
function appendZero(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length + 1);
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  out[values.length] = 0;
  return out;
}

/**
 * Karras et al. (2022), k-diffusion `get_sigmas_karras`:
 * ramp = linspace(0, 1, n); σ = (σ_max^{1/ρ} + ramp·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ; append 0.
 */
export function getSigmasKarras(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  checkN(n);
  const ramp = linspace(0, 1, n);
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  const sigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) sigmas[i] = (maxInvRho + ramp[i] * (minInvRho - maxInvRho)) ** rho;
  return appendZero(sigmas);
}

/** k-diffusion `get_sigmas_exponential`: exp(linspace(log σ_max, log σ_min, n)); append 0. */
export function getSigmasExponential(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  checkN(n);
  const logs = linspace(Math.log(sigmaMax), Math.log(sigmaMin), n);
  for (let i = 0; i < n; i++) logs[i] = Math.exp(logs[i]);
  return appendZero(logs);
}

/**
 * k-diffusion `get_sigmas_polyexponential` (polynomial in log σ):
 * ramp = linspace(1, 0, n)^ρ; σ = exp(ramp·(log σ_max − log σ_min) + log σ_min); append 0.
 * ρ = 1 is the exponential schedule.
 */
export function getSigmasPolyexponential(n: number, sigmaMin: number, sigmaMax: number, rho = 1): Float64Array {
  checkN(n);
  const ramp = linspace(1, 0, n);
  const logMin = Math.log(sigmaMin);
  const logMax = Math.log(sigmaMax);
  const sigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) sigmas[i] = Math.exp(ramp[i] ** rho * (logMax - logMin) + logMin);
  return appendZero(sigmas);
}

/**
 * The model's own uniform-in-t schedule (k-diffusion `DiscreteSchedule.get_sigmas(n)`, the
 * "Uniform"/"Automatic" choice for Euler and Euler a): t = linspace(999, 0, n); σ = t→σ(t); append 0.
 */
export function getSigmasUniform(n: number): Float64Array {
  checkN(n);
  const ts = linspace(NUM_TRAIN_TIMESTEPS - 1, 0, n);
  for (let i = 0; i < n; i++) ts[i] = tToSigma(ts[i]);
  return appendZero(ts);
}

/**
 * "SGM Uniform" (A1111 `sgm_uniform`): t linearly from σ→t(σ_max) to σ→t(σ_min) over n + 1 points,
 * drop the last, convert each to σ, append 0.
 */
export function getSigmasSgmUniform(n: number): Float64Array {
  checkN(n);
  const ts = linspace(sigmaToT(SIGMA_MAX), sigmaToT(SIGMA_MIN), n + 1);
  const sigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) sigmas[i] = tToSigma(ts[i]);
  return appendZero(sigmas);
}
