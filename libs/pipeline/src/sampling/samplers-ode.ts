/**
 * Deterministic (probability-flow ODE) samplers of k-diffusion, written from the formulas of
 * `k_diffusion/sampling.py` (Karras et al. 2022, Lu et al. 2022): Euler, Heun, DPM2, LMS and
 * DPM++ 2M. All run with s_churn = 0, the app's setting, so σ̂_i = σ_i and no noise is drawn
 * (churn is not offered as a knob).
 */
import {
  allocLike,
  callDenoise,
  checkSigmas,
  toD,
  type Denoiser,
  type SamplerOptions,
} from './sampler-core.ts';
import type { SampleArray } from './schedule.ts';

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
    const sigmaHat = sigmas[i];
    const denoised = await callDenoise(denoise, cur, sigmaHat, i, opts.signal);
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
 * k-diffusion `sample_heun` (Karras et al. 2022, Algorithm 2) with s_churn = 0:
 * d = (x − D(x, σ_i))/σ_i, dt = σ_{i+1} − σ_i; to σ_{i+1} = 0 an Euler step, otherwise
 * x₂ = x + d·dt, d₂ = (x₂ − D(x₂, σ_{i+1}))/σ_{i+1}, x ← x + (d + d₂)/2·dt.
 * Two denoiser calls per step except the last (2n − 1 in all when the schedule ends in 0).
 */
export async function heun<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  let cur = x.slice() as T;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    // A copy: the second call may reuse the denoiser's output buffer.
    const denoised = Float64Array.from(await callDenoise(denoise, cur, sigma, i, opts.signal));
    const dt = sigmaNext - sigma;
    const next = allocLike(cur);
    if (sigmaNext === 0) {
      for (let j = 0; j < next.length; j++) next[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt;
    } else {
      const x2 = allocLike(cur);
      for (let j = 0; j < x2.length; j++) x2[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt;
      const denoised2 = await callDenoise(denoise, x2, sigmaNext, i, opts.signal);
      for (let j = 0; j < next.length; j++) {
        const d = toD(cur[j], sigma, denoised[j]);
        const d2 = toD(x2[j], sigmaNext, denoised2[j]);
        next[j] = cur[j] + ((d + d2) / 2) * dt;
      }
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext, x: cur, denoised });
  }
  return cur;
}

/** exp(lerp(log a, log b, ½)) the way torch's `lerp` evaluates it: the geometric mean of a and b. */
export const logMidpoint = (a: number, b: number): number => {
  const la = Math.log(a);
  return Math.exp(la + 0.5 * (Math.log(b) - la));
};

/**
 * k-diffusion `sample_dpm_2` (DPM-Solver-2 with Karras' σ parameterisation), s_churn = 0:
 * d = (x − D(x, σ_i))/σ_i; to σ_{i+1} = 0 an Euler step, otherwise σ_mid = √(σ_i·σ_{i+1}) (as
 * exp of the log-midpoint), x₂ = x + d·(σ_mid − σ_i), d₂ = (x₂ − D(x₂, σ_mid))/σ_mid,
 * x ← x + d₂·(σ_{i+1} − σ_i). The app runs it on n + 1 sigmas with the second-to-last dropped.
 */
export async function dpm_2<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  let cur = x.slice() as T;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const denoised = Float64Array.from(await callDenoise(denoise, cur, sigma, i, opts.signal));
    const next = allocLike(cur);
    if (sigmaNext === 0) {
      const dt = sigmaNext - sigma;
      for (let j = 0; j < next.length; j++) next[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt;
    } else {
      const sigmaMid = logMidpoint(sigma, sigmaNext);
      const dt1 = sigmaMid - sigma;
      const dt2 = sigmaNext - sigma;
      const x2 = allocLike(cur);
      for (let j = 0; j < x2.length; j++) x2[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt1;
      const denoised2 = await callDenoise(denoise, x2, sigmaMid, i, opts.signal);
      for (let j = 0; j < next.length; j++) next[j] = cur[j] + toD(x2[j], sigmaMid, denoised2[j]) * dt2;
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext, x: cur, denoised });
  }
  return cur;
}

// Three-point Gauss–Legendre: exact for polynomials up to degree 5 (the LMS basis has degree ≤ 3).
const GL_NODES = [-Math.sqrt(3 / 5), 0, Math.sqrt(3 / 5)];
const GL_WEIGHTS = [5 / 9, 8 / 9, 5 / 9];

/**
 * The linear multistep coefficient of k-diffusion `linear_multistep_coeff(order, t, i, j)`:
 * ∫_{t_i}^{t_{i+1}} Π_{k<order, k≠j} (τ − t_{i−k})/(t_{i−j} − t_{i−k}) dτ. k-diffusion integrates
 * numerically (scipy `quad`); the integrand is a polynomial of degree order − 1 ≤ 3, which
 * Gauss–Legendre integrates exactly, so the two agree to rounding.
 */
export function linearMultistepCoeff(order: number, t: ArrayLike<number>, i: number, j: number): number {
  if (order - 1 > i) throw new RangeError(`linearMultistepCoeff: order ${order} too high for step ${i}`);
  const a = t[i];
  const b = t[i + 1];
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let q = 0; q < GL_NODES.length; q++) {
    const tau = mid + half * GL_NODES[q];
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k === j) continue;
      prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    }
    sum += GL_WEIGHTS[q] * prod;
  }
  return sum * half;
}

export interface LmsOptions extends SamplerOptions {
  /** Order of the multistep method (k-diffusion and diffusers default 4). */
  order?: number;
}

/**
 * k-diffusion `sample_lms` (linear multistep in σ, order 4; also what diffusers'
 * LMSDiscreteScheduler computes): d_i = (x − D(x, σ_i))/σ_i; with m = min(i + 1, order),
 * x ← x + Σ_{j<m} c_j·d_{i−j}, c_j = linearMultistepCoeff(m, σ, i, j).
 */
export async function lms<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: LmsOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const order = opts.order ?? 4;
  if (!Number.isInteger(order) || order < 1) throw new RangeError(`lms: order must be an integer ≥ 1, got ${order}`);
  let cur = x.slice() as T;
  const ds: Float64Array[] = []; // most recent last
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const denoised = await callDenoise(denoise, cur, sigma, i, opts.signal);
    const d = new Float64Array(cur.length);
    for (let j = 0; j < d.length; j++) d[j] = toD(cur[j], sigma, denoised[j]);
    ds.push(d);
    if (ds.length > order) ds.shift();
    const curOrder = Math.min(i + 1, order);
    const coeffs = Array.from({ length: curOrder }, (_, j) => linearMultistepCoeff(curOrder, sigmas, i, j));
    const next = allocLike(cur);
    for (let e = 0; e < next.length; e++) {
      // Σ coeff_j·d_{i−j}, in k-diffusion's order (j = 0 is the newest derivative).
      let acc = 0;
      for (let j = 0; j < curOrder; j++) acc += coeffs[j] * ds[ds.length - 1 - j][e];
      next[e] = cur[e] + acc;
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
    const denoised = await callDenoise(denoise, cur, sigmas[i], i, opts.signal);
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
