/**
 * Stochastic samplers of k-diffusion (ancestral and SDE), written from the formulas of
 * `k_diffusion/sampling.py` (Lu et al. 2022 DPM-Solver++, Karras et al. 2022): Euler a, DPM2 a,
 * DPM++ 2S a, DPM++ SDE, DPM++ 2M SDE (midpoint and Heun) and DPM++ 3M SDE. η and s_noise
 * default to 1, the app's settings.
 *
 * Noise: every draw comes from `opts.noise(k)` (the service's seeded generator). The app draws the
 * ancestral noise with `randn_like` and the SDE noise (DPM++ SDE, 2M SDE, 3M SDE) from a torchsde
 * Brownian tree over σ. Our draws have the same joint distribution as those — independent N(0, 1)
 * per step, and for DPM++ SDE, whose two draws per step come from nested σ intervals, the second
 * draw is built from the first as a Brownian increment would be — so results are statistically
 * equivalent to the app's, never bit-equal. A draw whose factor σ_up·s_noise is 0 is not
 * requested (k-diffusion draws it and multiplies by 0); indices are fixed per step, so skipping
 * one does not shift later draws.
 */
import {
  allocLike,
  callDenoise,
  checkSigmas,
  drawNoise,
  getAncestralStep,
  toD,
  type AncestralOptions,
  type Denoiser,
} from './sampler-core.ts';
import { logMidpoint } from './samplers-ode.ts';
import type { SampleArray } from './schedule.ts';

const sigmaFn = (t: number): number => Math.exp(-t);
const tFn = (sigma: number): number => -Math.log(sigma);

/**
 * k-diffusion `sample_euler_ancestral(eta, s_noise, noise_sampler)`:
 * (σ_down, σ_up) = get_ancestral_step(σ_i, σ_{i+1}, η); x ← x + (x − D)/σ_i·(σ_down − σ_i);
 * if σ_{i+1} > 0: x ← x + ε_i·s_noise·σ_up.
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
    const sigma = sigmas[i];
    const denoised = await callDenoise(denoise, cur, sigma, i, opts.signal);
    const { sigmaDown, sigmaUp } = getAncestralStep(sigma, sigmas[i + 1], eta);
    const dt = sigmaDown - sigma;
    const eps = sigmas[i + 1] > 0 && sigmaUp * sNoise !== 0 ? drawNoise(opts, i, cur.length, 'euler_ancestral') : undefined;
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
 * k-diffusion `sample_dpm_2_ancestral`: (σ_down, σ_up) = get_ancestral_step(σ_i, σ_{i+1}, η),
 * d = (x − D(x, σ_i))/σ_i. σ_down = 0: x ← x + d·(σ_down − σ_i). Otherwise a DPM-Solver-2 step to
 * σ_down through σ_mid = log-midpoint(σ_i, σ_down): x₂ = x + d·(σ_mid − σ_i),
 * x ← x + (x₂ − D(x₂, σ_mid))/σ_mid·(σ_down − σ_i), then x ← x + ε_i·s_noise·σ_up.
 * The app runs it on n + 1 sigmas with the second-to-last dropped.
 */
export async function dpm_2_ancestral<T extends SampleArray>(
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
    const sigma = sigmas[i];
    const denoised = Float64Array.from(await callDenoise(denoise, cur, sigma, i, opts.signal));
    const { sigmaDown, sigmaUp } = getAncestralStep(sigma, sigmas[i + 1], eta);
    const next = allocLike(cur);
    if (sigmaDown === 0) {
      const dt = sigmaDown - sigma;
      for (let j = 0; j < next.length; j++) next[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt;
    } else {
      const sigmaMid = logMidpoint(sigma, sigmaDown);
      const dt1 = sigmaMid - sigma;
      const dt2 = sigmaDown - sigma;
      const x2 = allocLike(cur);
      for (let j = 0; j < x2.length; j++) x2[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt1;
      const denoised2 = await callDenoise(denoise, x2, sigmaMid, i, opts.signal);
      const eps = sigmaUp * sNoise !== 0 ? drawNoise(opts, i, cur.length, 'dpm_2_ancestral') : undefined;
      for (let j = 0; j < next.length; j++) {
        let v = cur[j] + toD(x2[j], sigmaMid, denoised2[j]) * dt2;
        if (eps) v = v + eps[j] * sNoise * sigmaUp;
        next[j] = v;
      }
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext: sigmas[i + 1], x: cur, denoised });
  }
  return cur;
}

/**
 * k-diffusion `sample_dpmpp_2s_ancestral` (DPM-Solver++(2S), single-step, r = ½):
 * (σ_down, σ_up) = get_ancestral_step(σ_i, σ_{i+1}, η). σ_down = 0: Euler step. Otherwise with
 * t = −log σ_i, t' = −log σ_down, h = t' − t, s = t + h/2:
 * x₂ = (σ(s)/σ(t))·x − expm1(−h/2)·D, x ← (σ(t')/σ(t))·x − expm1(−h)·D(x₂, σ(s)).
 * Then, if σ_{i+1} > 0, x ← x + ε_i·s_noise·σ_up.
 */
export async function dpmpp_2s_ancestral<T extends SampleArray>(
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
    const sigma = sigmas[i];
    const denoised = Float64Array.from(await callDenoise(denoise, cur, sigma, i, opts.signal));
    const { sigmaDown, sigmaUp } = getAncestralStep(sigma, sigmas[i + 1], eta);
    const next = allocLike(cur);
    if (sigmaDown === 0) {
      const dt = sigmaDown - sigma;
      for (let j = 0; j < next.length; j++) next[j] = cur[j] + toD(cur[j], sigma, denoised[j]) * dt;
    } else {
      const t = tFn(sigma);
      const tNext = tFn(sigmaDown);
      const r = 1 / 2;
      const h = tNext - t;
      const s = t + r * h;
      const a2 = sigmaFn(s) / sigmaFn(t);
      const b2 = Math.expm1(-h * r);
      const x2 = allocLike(cur);
      for (let j = 0; j < x2.length; j++) x2[j] = a2 * cur[j] - b2 * denoised[j];
      const denoised2 = await callDenoise(denoise, x2, sigmaFn(s), i, opts.signal);
      const a = sigmaFn(tNext) / sigmaFn(t);
      const b = Math.expm1(-h);
      for (let j = 0; j < next.length; j++) next[j] = a * cur[j] - b * denoised2[j];
    }
    if (sigmas[i + 1] > 0 && sigmaUp * sNoise !== 0) {
      const eps = drawNoise(opts, i, cur.length, 'dpmpp_2s_ancestral');
      for (let j = 0; j < next.length; j++) next[j] = next[j] + eps[j] * sNoise * sigmaUp;
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext: sigmas[i + 1], x: cur, denoised });
  }
  return cur;
}

/**
 * The second Brownian draw of a DPM++ SDE step. k-diffusion's Brownian-tree noise sampler returns
 * (W(a) − W(b))/√(a − b) for an interval b < a of σ. DPM++ SDE asks for [σ_s, σ_i] and then for
 * [σ_{i+1}, σ_i], which contains it, so the two draws are correlated. With z₁ = the first draw and
 * z₂ an independent N(0, 1) standing for the increment over [σ_{i+1}, σ_s]:
 * second = (√Δ₁·z₁ + √Δ₂·z₂)/√(Δ₁ + Δ₂), Δ₁ = σ_i − σ_s, Δ₂ = σ_s − σ_{i+1}: the same joint law.
 */
export function nestedBrownianDraw(
  z1: ArrayLike<number>,
  z2: ArrayLike<number>,
  sigma: number,
  sigmaMid: number,
  sigmaNext: number,
): Float64Array {
  const d1 = sigma - sigmaMid;
  const d2 = sigmaMid - sigmaNext;
  const w1 = Math.sqrt(d1 / (d1 + d2));
  const w2 = Math.sqrt(d2 / (d1 + d2));
  const out = new Float64Array(z1.length);
  for (let j = 0; j < out.length; j++) out[j] = w1 * z1[j] + w2 * z2[j];
  return out;
}

/**
 * k-diffusion `sample_dpmpp_sde` (DPM-Solver++ stochastic, r = ½). σ_{i+1} = 0: Euler step.
 * Otherwise t = −log σ_i, t' = −log σ_{i+1}, h = t' − t, s = t + h·r, fac = 1/(2r):
 * (sd, su) = get_ancestral_step(σ(t), σ(s), η), s̃ = −log sd,
 * x₂ = (σ(s̃)/σ(t))·x − expm1(t − s̃)·D + z·s_noise·su, D₂ = D(x₂, σ(s));
 * (sd, su) = get_ancestral_step(σ(t), σ(t'), η), t̃ = −log sd,
 * x ← (σ(t̃)/σ(t))·x − expm1(t − t̃)·((1 − fac)·D + fac·D₂) + z'·s_noise·su.
 * z = noise(i) and z' = `nestedBrownianDraw(noise(i), noise(n + i), …)` stand in for the app's
 * Brownian tree (same law, not bit-equal).
 */
export async function dpmpp_sde<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  const r = 1 / 2;
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
      const t = tFn(sigma);
      const tNext = tFn(sigmaNext);
      const h = tNext - t;
      const s = t + h * r;
      const fac = 1 / (2 * r);
      let z1: ArrayLike<number> | undefined;
      const first = (): ArrayLike<number> => (z1 ??= drawNoise(opts, i, cur.length, 'dpmpp_sde'));

      // Step 1: to σ(s), with noise.
      const step1 = getAncestralStep(sigmaFn(t), sigmaFn(s), eta);
      const sTilde = tFn(step1.sigmaDown);
      const a1 = sigmaFn(sTilde) / sigmaFn(t);
      const b1 = Math.expm1(t - sTilde);
      const x2 = allocLike(cur);
      const up1 = sNoise * step1.sigmaUp;
      const eps1 = up1 !== 0 ? first() : undefined;
      for (let j = 0; j < x2.length; j++) {
        let v = a1 * cur[j] - b1 * denoised[j];
        if (eps1) v = v + eps1[j] * up1;
        x2[j] = v;
      }
      const denoised2 = await callDenoise(denoise, x2, sigmaFn(s), i, opts.signal);

      // Step 2: to σ(t'), with the combined estimate.
      const step2 = getAncestralStep(sigmaFn(t), sigmaFn(tNext), eta);
      const tNextTilde = tFn(step2.sigmaDown);
      const a2 = sigmaFn(tNextTilde) / sigmaFn(t);
      const b2 = Math.expm1(t - tNextTilde);
      const up2 = sNoise * step2.sigmaUp;
      const eps2 =
        up2 !== 0
          ? nestedBrownianDraw(first(), drawNoise(opts, n + i, cur.length, 'dpmpp_sde'), sigmaFn(t), sigmaFn(s), sigmaFn(tNext))
          : undefined;
      for (let j = 0; j < next.length; j++) {
        const denoisedD = (1 - fac) * denoised[j] + fac * denoised2[j];
        let v = a2 * cur[j] - b2 * denoisedD;
        if (eps2) v = v + eps2[j] * up2;
        next[j] = v;
      }
    }
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext, x: cur, denoised });
  }
  return cur;
}

export interface Dpmpp2mSdeOptions extends AncestralOptions {
  /** Second-order correction: `midpoint` (DPM++ 2M SDE) or `heun` (DPM++ 2M SDE Heun). Default midpoint. */
  solverType?: 'midpoint' | 'heun';
}

/**
 * k-diffusion `sample_dpmpp_2m_sde` (DPM-Solver++(2M) SDE). σ_{i+1} = 0: x ← D. Otherwise
 * t = −log σ_i, s = −log σ_{i+1}, h = s − t, ηh = η·h:
 * x ← (σ_{i+1}/σ_i)·e^{−ηh}·x − expm1(−h − ηh)·D; after the first step, with r = h_{i−1}/h,
 * midpoint: x ← x − ½·expm1(−h − ηh)·(D − D_{i−1})/r;
 * heun: x ← x + (−expm1(−h − ηh)/(−h − ηh) + 1)·(D − D_{i−1})/r;
 * then x ← x + ε_i·σ_{i+1}·√(−expm1(−2ηh))·s_noise.
 * ε_i = noise(i) stands in for the app's Brownian-tree draw over [σ_{i+1}, σ_i] (same law).
 */
export async function dpmpp_2m_sde<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: Dpmpp2mSdeOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  const solverType = opts.solverType ?? 'midpoint';
  if (solverType !== 'midpoint' && solverType !== 'heun') throw new RangeError(`dpmpp_2m_sde: solverType must be midpoint or heun`);
  let cur = x.slice() as T;
  let oldDenoised: Float64Array | undefined;
  let hLast = 0;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const denoised = await callDenoise(denoise, cur, sigma, i, opts.signal);
    const next = allocLike(cur);
    if (sigmaNext === 0) {
      for (let j = 0; j < next.length; j++) next[j] = denoised[j];
    } else {
      const t = -Math.log(sigma);
      const s = -Math.log(sigmaNext);
      const h = s - t;
      const etaH = eta * h;
      const a = (sigmaNext / sigma) * Math.exp(-etaH);
      const b = -Math.expm1(-h - etaH);
      let c = 0; // coefficient of (D − D_{i−1})
      if (oldDenoised !== undefined) {
        const r = hLast / h;
        c = solverType === 'heun' ? (b / (-h - etaH) + 1) * (1 / r) : 0.5 * b * (1 / r);
      }
      const up = sigmaNext * Math.sqrt(-Math.expm1(-2 * etaH)) * sNoise;
      const eps = eta && up !== 0 ? drawNoise(opts, i, cur.length, 'dpmpp_2m_sde') : undefined;
      for (let j = 0; j < next.length; j++) {
        let v = a * cur[j] + b * denoised[j];
        if (oldDenoised !== undefined) v = v + c * (denoised[j] - oldDenoised[j]);
        if (eps) v = v + eps[j] * up;
        next[j] = v;
      }
      hLast = h;
    }
    oldDenoised = Float64Array.from(denoised);
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext, x: cur, denoised });
  }
  return cur;
}

/** `dpmpp_2m_sde` with the Heun correction (the app's "DPM++ 2M SDE Heun"). */
export const dpmpp_2m_sde_heun = <T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<T> => dpmpp_2m_sde(denoise, x, sigmas, { ...opts, solverType: 'heun' });

/**
 * k-diffusion `sample_dpmpp_3m_sde` (DPM-Solver++(3M) SDE). σ_{i+1} = 0: x ← D. Otherwise
 * h = log(σ_i/σ_{i+1}), h_η = h·(η + 1): x ← e^{−h_η}·x − expm1(−h_η)·D, plus, from the second step,
 * with φ₂ = expm1(−h_η)/h_η + 1 and r = h_{i−1}/h: x ← x + φ₂·(D − D_{i−1})/r; from the third,
 * r₀ = h_{i−1}/h, r₁ = h_{i−2}/h, d₁₀ = (D − D_{i−1})/r₀, d₁₁ = (D_{i−1} − D_{i−2})/r₁,
 * d₁ = d₁₀ + (d₁₀ − d₁₁)·r₀/(r₀ + r₁), d₂ = (d₁₀ − d₁₁)/(r₀ + r₁), φ₃ = φ₂/h_η − ½:
 * x ← x + φ₂·d₁ − φ₃·d₂ instead; then x ← x + ε_i·σ_{i+1}·√(−expm1(−2ηh))·s_noise.
 * The app runs it on n + 1 sigmas with the second-to-last dropped.
 */
export async function dpmpp_3m_sde<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  let cur = x.slice() as T;
  let denoised1: Float64Array | undefined;
  let denoised2: Float64Array | undefined;
  let h1: number | undefined;
  let h2: number | undefined;
  let h = 0;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const sigmaNext = sigmas[i + 1];
    const denoised = await callDenoise(denoise, cur, sigma, i, opts.signal);
    const next = allocLike(cur);
    if (sigmaNext === 0) {
      for (let j = 0; j < next.length; j++) next[j] = denoised[j];
    } else {
      const t = -Math.log(sigma);
      const s = -Math.log(sigmaNext);
      h = s - t;
      const hEta = h * (eta + 1);
      const a = Math.exp(-hEta);
      const b = -Math.expm1(-hEta);
      const phi2 = Math.expm1(-hEta) / hEta + 1;
      const up = sigmaNext * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise;
      const eps = eta && up !== 0 ? drawNoise(opts, i, cur.length, 'dpmpp_3m_sde') : undefined;
      for (let j = 0; j < next.length; j++) {
        let v = a * cur[j] + b * denoised[j];
        if (h2 !== undefined && denoised1 && denoised2) {
          const r0 = h1! / h;
          const r1 = h2 / h;
          const d10 = (denoised[j] - denoised1[j]) / r0;
          const d11 = (denoised1[j] - denoised2[j]) / r1;
          const d1 = d10 + ((d10 - d11) * r0) / (r0 + r1);
          const d2 = (d10 - d11) / (r0 + r1);
          const phi3 = phi2 / hEta - 0.5;
          v = v + phi2 * d1 - phi3 * d2;
        } else if (h1 !== undefined && denoised1) {
          const r = h1 / h;
          v = v + phi2 * ((denoised[j] - denoised1[j]) / r);
        }
        if (eps) v = v + eps[j] * up;
        next[j] = v;
      }
    }
    denoised2 = denoised1;
    denoised1 = Float64Array.from(denoised);
    h2 = h1;
    h1 = h;
    cur = next;
    opts.onStep?.(i, n, { sigma, sigmaNext, x: cur, denoised });
  }
  return cur;
}
