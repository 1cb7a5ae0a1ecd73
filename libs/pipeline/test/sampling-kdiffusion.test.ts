/**
 * Reference trajectories for the samplers added after euler / euler_ancestral / dpmpp_2m: an
 * independent float64 transcription of the algorithms of k_diffusion/sampling.py (as vendored by
 * the official app) on plain number[] "tensors", run on the same toy denoiser and the same noise as
 * our samplers, compared step by step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dpm_2,
  dpm_2_ancestral,
  dpm_adaptive,
  dpm_fast,
  dpmpp_2m_sde,
  dpmpp_2m_sde_heun,
  dpmpp_2s_ancestral,
  dpmpp_3m_sde,
  dpmpp_sde,
  gaussianNoise,
  getSigmasExponential,
  getSigmasKarras,
  getSigmasUniform,
  heun,
  linearMultistepCoeff,
  lms,
  planSampling,
  SIGMA_MAX,
  SIGMA_MIN,
} from '../src/sampling/index.ts';
import type { AncestralOptions, Denoiser } from '../src/sampling/index.ts';

type Vec = number[];
type Model = (x: Vec, sigma: number) => Vec;
type NoiseSampler = (sigma: number, sigmaNext: number) => Vec;
const add = (a: Vec, b: Vec): Vec => a.map((v, j) => v + b[j]);
const sub = (a: Vec, b: Vec): Vec => a.map((v, j) => v - b[j]);
const mul = (a: Vec, s: number): Vec => a.map((v) => v * s);
const div = (a: Vec, s: number): Vec => a.map((v) => v / s);

const to_d = (x: Vec, sigma: number, denoised: Vec): Vec => div(sub(x, denoised), sigma);

function get_ancestral_step(sigma_from: number, sigma_to: number, eta = 1): [number, number] {
  if (!eta) return [sigma_to, 0];
  const sigma_up = Math.min(sigma_to, eta * ((sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2)) / sigma_from ** 2) ** 0.5);
  const sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5;
  return [sigma_down, sigma_up];
}

/** torch.lerp(start, end, w) = start + w·(end − start). */
const lerp = (a: number, b: number, w: number): number => a + w * (b - a);
const sigma_fn = (t: number): number => Math.exp(-t);
const t_fn = (sigma: number): number => -Math.log(sigma);

// Each reference returns the state after every step (the last entry is the result).

function ref_heun(model: Model, x: Vec, sigmas: ArrayLike<number>): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const sigma_hat = sigmas[i]; // s_churn = 0 → γ = 0
    const denoised = model(x, sigma_hat);
    const d = to_d(x, sigma_hat, denoised);
    const dt = sigmas[i + 1] - sigma_hat;
    if (sigmas[i + 1] === 0) {
      x = add(x, mul(d, dt));
    } else {
      const x_2 = add(x, mul(d, dt));
      const denoised_2 = model(x_2, sigmas[i + 1]);
      const d_2 = to_d(x_2, sigmas[i + 1], denoised_2);
      const d_prime = div(add(d, d_2), 2);
      x = add(x, mul(d_prime, dt));
    }
    out.push(x);
  }
  return out;
}

function ref_dpm_2(model: Model, x: Vec, sigmas: ArrayLike<number>): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const sigma_hat = sigmas[i];
    const denoised = model(x, sigma_hat);
    const d = to_d(x, sigma_hat, denoised);
    if (sigmas[i + 1] === 0) {
      const dt = sigmas[i + 1] - sigma_hat;
      x = add(x, mul(d, dt));
    } else {
      const sigma_mid = Math.exp(lerp(Math.log(sigma_hat), Math.log(sigmas[i + 1]), 0.5));
      const dt_1 = sigma_mid - sigma_hat;
      const dt_2 = sigmas[i + 1] - sigma_hat;
      const x_2 = add(x, mul(d, dt_1));
      const denoised_2 = model(x_2, sigma_mid);
      const d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = add(x, mul(d_2, dt_2));
    }
    out.push(x);
  }
  return out;
}

function ref_dpm_2_ancestral(model: Model, x: Vec, sigmas: ArrayLike<number>, eta: number, s_noise: number, noise_sampler: NoiseSampler): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    const [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    const d = to_d(x, sigmas[i], denoised);
    if (sigma_down === 0) {
      const dt = sigma_down - sigmas[i];
      x = add(x, mul(d, dt));
    } else {
      const sigma_mid = Math.exp(lerp(Math.log(sigmas[i]), Math.log(sigma_down), 0.5));
      const dt_1 = sigma_mid - sigmas[i];
      const dt_2 = sigma_down - sigmas[i];
      const x_2 = add(x, mul(d, dt_1));
      const denoised_2 = model(x_2, sigma_mid);
      const d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = add(x, mul(d_2, dt_2));
      x = add(x, mul(mul(noise_sampler(sigmas[i], sigmas[i + 1]), s_noise), sigma_up));
    }
    out.push(x);
  }
  return out;
}

/** scipy `integrate.quad` stand-in: composite Simpson, exact for the cubic Lagrange basis. */
function integrate(fn: (tau: number) => number, a: number, b: number): number {
  const m = 8;
  const h = (b - a) / m;
  let s = fn(a) + fn(b);
  for (let k = 1; k < m; k++) s += (k % 2 ? 4 : 2) * fn(a + k * h);
  return (s * h) / 3;
}

function linear_multistep_coeff(order: number, t: ArrayLike<number>, i: number, j: number): number {
  if (order - 1 > i) throw new Error(`Order ${order} too high for step ${i}`);
  const fn = (tau: number): number => {
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (j === k) continue;
      prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    }
    return prod;
  };
  return integrate(fn, t[i], t[i + 1]);
}

function ref_lms(model: Model, x: Vec, sigmas: ArrayLike<number>, order = 4): Vec[] {
  const out: Vec[] = [];
  const ds: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    const d = to_d(x, sigmas[i], denoised);
    ds.push(d);
    if (ds.length > order) ds.shift();
    const cur_order = Math.min(i + 1, order);
    const coeffs = Array.from({ length: cur_order }, (_, j) => linear_multistep_coeff(cur_order, sigmas, i, j));
    const reversed = ds.slice().reverse();
    let sum = x.map(() => 0);
    coeffs.forEach((c, j) => (sum = add(sum, mul(reversed[j], c))));
    x = add(x, sum);
    out.push(x);
  }
  return out;
}

function ref_dpmpp_2s_ancestral(model: Model, x: Vec, sigmas: ArrayLike<number>, eta: number, s_noise: number, noise_sampler: NoiseSampler): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    const [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    if (sigma_down === 0) {
      const d = to_d(x, sigmas[i], denoised);
      const dt = sigma_down - sigmas[i];
      x = add(x, mul(d, dt));
    } else {
      const t = t_fn(sigmas[i]);
      const t_next = t_fn(sigma_down);
      const r = 1 / 2;
      const h = t_next - t;
      const s = t + r * h;
      const x_2 = sub(mul(x, sigma_fn(s) / sigma_fn(t)), mul(denoised, Math.expm1(-h * r)));
      const denoised_2 = model(x_2, sigma_fn(s));
      x = sub(mul(x, sigma_fn(t_next) / sigma_fn(t)), mul(denoised_2, Math.expm1(-h)));
    }
    if (sigmas[i + 1] > 0) x = add(x, mul(mul(noise_sampler(sigmas[i], sigmas[i + 1]), s_noise), sigma_up));
    out.push(x);
  }
  return out;
}

function ref_dpmpp_sde(model: Model, x: Vec, sigmas: ArrayLike<number>, eta: number, s_noise: number, noise_sampler: NoiseSampler, r = 1 / 2): Vec[] {
  const out: Vec[] = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    if (sigmas[i + 1] === 0) {
      const d = to_d(x, sigmas[i], denoised);
      const dt = sigmas[i + 1] - sigmas[i];
      x = add(x, mul(d, dt));
    } else {
      const t = t_fn(sigmas[i]);
      const t_next = t_fn(sigmas[i + 1]);
      const h = t_next - t;
      const s = t + h * r;
      const fac = 1 / (2 * r);
      let [sd, su] = get_ancestral_step(sigma_fn(t), sigma_fn(s), eta);
      const s_ = t_fn(sd);
      let x_2 = sub(mul(x, sigma_fn(s_) / sigma_fn(t)), mul(denoised, Math.expm1(t - s_)));
      x_2 = add(x_2, mul(mul(noise_sampler(sigma_fn(t), sigma_fn(s)), s_noise), su));
      const denoised_2 = model(x_2, sigma_fn(s));
      [sd, su] = get_ancestral_step(sigma_fn(t), sigma_fn(t_next), eta);
      const t_next_ = t_fn(sd);
      const denoised_d = add(mul(denoised, 1 - fac), mul(denoised_2, fac));
      x = sub(mul(x, sigma_fn(t_next_) / sigma_fn(t)), mul(denoised_d, Math.expm1(t - t_next_)));
      x = add(x, mul(mul(noise_sampler(sigma_fn(t), sigma_fn(t_next)), s_noise), su));
    }
    out.push(x);
  }
  return out;
}

function ref_dpmpp_2m_sde(
  model: Model,
  x: Vec,
  sigmas: ArrayLike<number>,
  eta: number,
  s_noise: number,
  noise_sampler: NoiseSampler,
  solver_type: 'midpoint' | 'heun',
): Vec[] {
  const out: Vec[] = [];
  let old_denoised: Vec | null = null;
  let h_last = Number.NaN;
  let h = Number.NaN;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      const t = -Math.log(sigmas[i]);
      const s = -Math.log(sigmas[i + 1]);
      h = s - t;
      const eta_h = eta * h;
      x = add(mul(x, (sigmas[i + 1] / sigmas[i]) * Math.exp(-eta_h)), mul(denoised, -Math.expm1(-h - eta_h)));
      if (old_denoised !== null) {
        const r = h_last / h;
        if (solver_type === 'heun') {
          x = add(x, mul(sub(denoised, old_denoised), (-Math.expm1(-h - eta_h) / (-h - eta_h) + 1) * (1 / r)));
        } else {
          x = add(x, mul(sub(denoised, old_denoised), 0.5 * -Math.expm1(-h - eta_h) * (1 / r)));
        }
      }
      if (eta) x = add(x, mul(noise_sampler(sigmas[i], sigmas[i + 1]), sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * eta_h)) * s_noise));
    }
    old_denoised = denoised;
    h_last = h;
    out.push(x);
  }
  return out;
}

function ref_dpmpp_3m_sde(model: Model, x: Vec, sigmas: ArrayLike<number>, eta: number, s_noise: number, noise_sampler: NoiseSampler): Vec[] {
  const out: Vec[] = [];
  let denoised_1: Vec | null = null;
  let denoised_2: Vec | null = null;
  let h_1: number | null = null;
  let h_2: number | null = null;
  let h = Number.NaN;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      const t = -Math.log(sigmas[i]);
      const s = -Math.log(sigmas[i + 1]);
      h = s - t;
      const h_eta = h * (eta + 1);
      x = add(mul(x, Math.exp(-h_eta)), mul(denoised, -Math.expm1(-h_eta)));
      if (h_2 !== null) {
        const r0 = h_1! / h;
        const r1 = h_2 / h;
        const d1_0 = div(sub(denoised, denoised_1!), r0);
        const d1_1 = div(sub(denoised_1!, denoised_2!), r1);
        const d1 = add(d1_0, mul(sub(d1_0, d1_1), r0 / (r0 + r1)));
        const d2 = div(sub(d1_0, d1_1), r0 + r1);
        const phi_2 = Math.expm1(-h_eta) / h_eta + 1;
        const phi_3 = phi_2 / h_eta - 0.5;
        x = sub(add(x, mul(d1, phi_2)), mul(d2, phi_3));
      } else if (h_1 !== null) {
        const r = h_1 / h;
        const d = div(sub(denoised, denoised_1!), r);
        const phi_2 = Math.expm1(-h_eta) / h_eta + 1;
        x = add(x, mul(d, phi_2));
      }
      if (eta) x = add(x, mul(noise_sampler(sigmas[i], sigmas[i + 1]), sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * h * eta)) * s_noise));
    }
    [denoised_1, denoised_2] = [denoised, denoised_1];
    [h_1, h_2] = [h, h_1];
    out.push(x);
  }
  return out;
}

/** k-diffusion's DPMSolver class (ε cache per step, t = −log σ). */
class RefDPMSolver {
  nfe = 0;
  constructor(private readonly model: Model) {}
  t = (sigma: number): number => -Math.log(sigma);
  sigma = (t: number): number => Math.exp(-t);

  eps(cache: Map<string, Vec>, key: string, x: Vec, t: number): Vec {
    const hit = cache.get(key);
    if (hit) return hit;
    this.nfe++;
    const e = div(sub(x, this.model(x, this.sigma(t))), this.sigma(t));
    cache.set(key, e);
    return e;
  }

  dpm_solver_1_step(x: Vec, t: number, t_next: number, cache: Map<string, Vec>): Vec {
    const h = t_next - t;
    const eps = this.eps(cache, 'eps', x, t);
    return sub(x, mul(eps, this.sigma(t_next) * Math.expm1(h)));
  }

  dpm_solver_2_step(x: Vec, t: number, t_next: number, cache: Map<string, Vec>, r1 = 1 / 2): Vec {
    const h = t_next - t;
    const eps = this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const u1 = sub(x, mul(eps, this.sigma(s1) * Math.expm1(r1 * h)));
    const eps_r1 = this.eps(cache, 'eps_r1', u1, s1);
    return sub(sub(x, mul(eps, this.sigma(t_next) * Math.expm1(h))), mul(sub(eps_r1, eps), (this.sigma(t_next) / (2 * r1)) * Math.expm1(h)));
  }

  dpm_solver_3_step(x: Vec, t: number, t_next: number, cache: Map<string, Vec>, r1 = 1 / 3, r2 = 2 / 3): Vec {
    const h = t_next - t;
    const eps = this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const s2 = t + r2 * h;
    const u1 = sub(x, mul(eps, this.sigma(s1) * Math.expm1(r1 * h)));
    const eps_r1 = this.eps(cache, 'eps_r1', u1, s1);
    const u2 = sub(
      sub(x, mul(eps, this.sigma(s2) * Math.expm1(r2 * h))),
      mul(sub(eps_r1, eps), this.sigma(s2) * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1)),
    );
    const eps_r2 = this.eps(cache, 'eps_r2', u2, s2);
    return sub(sub(x, mul(eps, this.sigma(t_next) * Math.expm1(h))), mul(sub(eps_r2, eps), (this.sigma(t_next) / r2) * (Math.expm1(h) / h - 1)));
  }

  dpm_solver_fast(x: Vec, t_start: number, t_end: number, nfe: number, eta: number, s_noise: number, noise_sampler: NoiseSampler): Vec[] {
    const out: Vec[] = [];
    const m = Math.floor(nfe / 3) + 1;
    const ts = torchLinspace(t_start, t_end, m + 1);
    const orders = nfe % 3 === 0 ? [...Array<number>(m - 2).fill(3), 2, 1] : [...Array<number>(m - 1).fill(3), nfe % 3];
    for (let i = 0; i < orders.length; i++) {
      const cache = new Map<string, Vec>();
      const t = ts[i];
      const t_next = ts[i + 1];
      let t_next_ = t_next;
      let su = 0;
      if (eta) {
        const [sd] = get_ancestral_step(this.sigma(t), this.sigma(t_next), eta);
        t_next_ = Math.min(t_end, this.t(sd));
        su = (this.sigma(t_next) ** 2 - this.sigma(t_next_) ** 2) ** 0.5;
      }
      if (orders[i] === 1) x = this.dpm_solver_1_step(x, t, t_next_, cache);
      else if (orders[i] === 2) x = this.dpm_solver_2_step(x, t, t_next_, cache);
      else x = this.dpm_solver_3_step(x, t, t_next_, cache);
      x = add(x, mul(noise_sampler(this.sigma(t), this.sigma(t_next)), su * s_noise));
      out.push(x);
    }
    return out;
  }

  dpm_solver_adaptive(x: Vec, t_start: number, t_end: number, eta: number, s_noise: number, noise_sampler: NoiseSampler): { x: Vec; n_accept: number; n_reject: number } {
    const order = 3;
    const rtol = 0.05;
    const atol = 0.0078;
    const forward = t_end > t_start;
    const pid = new RefPID(0.05 * (forward ? 1 : -1), 0, 1, 0, eta ? 1.5 : order, 0.81);
    let s = t_start;
    let x_prev = x;
    let n_accept = 0;
    let n_reject = 0;
    while (forward ? s < t_end - 1e-5 : s > t_end + 1e-5) {
      const cache = new Map<string, Vec>();
      const t = forward ? Math.min(t_end, s + pid.h) : Math.max(t_end, s + pid.h);
      let t_ = t;
      let su = 0;
      if (eta) {
        const [sd] = get_ancestral_step(this.sigma(s), this.sigma(t), eta);
        t_ = Math.min(t_end, this.t(sd));
        su = (this.sigma(t) ** 2 - this.sigma(t_) ** 2) ** 0.5;
      }
      const x_low = this.dpm_solver_2_step(x, s, t_, cache, 1 / 3);
      const x_high = this.dpm_solver_3_step(x, s, t_, cache);
      const delta = x_low.map((v, j) => Math.max(atol, rtol * Math.max(Math.abs(v), Math.abs(x_prev[j]))));
      const scaled = x_low.map((v, j) => (v - x_high[j]) / delta[j]);
      const error = Math.hypot(...scaled) / x.length ** 0.5;
      if (pid.propose_step(error)) {
        x_prev = x_low;
        x = add(x_high, mul(noise_sampler(this.sigma(s), this.sigma(t)), su * s_noise));
        s = t;
        n_accept++;
      } else {
        n_reject++;
      }
    }
    return { x, n_accept, n_reject };
  }
}

class RefPID {
  private readonly b1: number;
  private readonly b2: number;
  private readonly b3: number;
  private errs: number[] = [];
  constructor(
    public h: number,
    pcoeff: number,
    icoeff: number,
    dcoeff: number,
    order: number,
    private readonly accept_safety: number,
  ) {
    this.b1 = (pcoeff + icoeff + dcoeff) / order;
    this.b2 = -(pcoeff + 2 * dcoeff) / order;
    this.b3 = dcoeff / order;
  }
  propose_step(error: number): boolean {
    const inv_error = 1 / (error + 1e-8);
    if (this.errs.length === 0) this.errs = [inv_error, inv_error, inv_error];
    this.errs[0] = inv_error;
    let factor = this.errs[0] ** this.b1 * this.errs[1] ** this.b2 * this.errs[2] ** this.b3;
    factor = 1 + Math.atan(factor - 1);
    const accept = factor >= this.accept_safety;
    if (accept) {
      this.errs[2] = this.errs[1];
      this.errs[1] = this.errs[0];
    }
    this.h *= factor;
    return accept;
  }
}

/** torch.linspace on the CPU (symmetric from both ends). */
function torchLinspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? a + step * i : b - step * (n - i - 1)));
}

// ---------------------------------------------------------------------------------------------

const N = 64;
const toyModel: Model = (x, sigma) =>
  x.map(
    (v, j) =>
      Math.tanh((0.8 * v) / Math.sqrt(sigma * sigma + 1) + 0.3 * Math.sin(j)) * (1 + 0.2 * Math.cos(sigma)) +
      (0.05 * x[(j + 1) % x.length]) / (1 + sigma),
  );
const toyDenoiser: Denoiser = (x, sigma) => toyModel(Array.from(x), sigma);

const initialNoise = (scale: number): Float64Array => Float64Array.from(gaussianNoise(7, N), (v) => v * scale);
const noise = (k: number): Float32Array => gaussianNoise(11, N, k + 1);

/** The step i whose σ_i is (within rounding of exp(−(−log σ))) `sigma`. */
function stepOf(sigmas: ArrayLike<number>, sigma: number): number {
  for (let i = 0; i < sigmas.length - 1; i++) if (Math.abs(sigmas[i] - sigma) <= 1e-12 * sigmas[i]) return i;
  throw new Error(`σ = ${sigma} is not a step of the schedule`);
}

/** Ancestral / one-draw-per-step SDE noise: the draw for the step that starts at `sigma`. */
const perStepNoise =
  (sigmas: ArrayLike<number>): NoiseSampler =>
  (sigma) =>
    Array.from(noise(stepOf(sigmas, sigma)));

/**
 * A Brownian path in σ for DPM++ SDE, built per step from the same two draws our sampler gets
 * (z₁ = noise(i) over [σ_s, σ_i], z₂ = noise(n + i) over [σ_{i+1}, σ_s]); a query (a, b) returns
 * (W(a) − W(b))/√(a − b), like k-diffusion's BrownianTreeNoiseSampler.
 */
function brownianNoise(sigmas: ArrayLike<number>): NoiseSampler {
  const n = sigmas.length - 1;
  const mids = new Map<number, number>();
  return (a, b) => {
    const i = stepOf(sigmas, a);
    const z1 = Array.from(noise(i));
    const z2 = Array.from(noise(n + i));
    if (!mids.has(i)) mids.set(i, b); // the first query of a step is [σ_s, σ_i]
    const mid = mids.get(i)!;
    const wNext = z1.map(() => 0);
    const wMid = add(wNext, mul(z2, Math.sqrt(mid - sigmas[i + 1])));
    const wTop = add(wMid, mul(z1, Math.sqrt(a - mid)));
    const at = (sigma: number): Vec => (sigma === a ? wTop : sigma === mid ? wMid : Math.abs(sigma - sigmas[i + 1]) <= 1e-12 * sigma ? wNext : []);
    const wb = at(b);
    assert.equal(wb.length, N, `Brownian path queried at σ = ${b} in step ${i}`);
    return div(sub(wTop, wb), Math.sqrt(a - b));
  };
}

/** The k-th call gets noise(k): DPM fast / adaptive draw once per (accepted) step, in order. */
function countingNoise(): NoiseSampler {
  let k = 0;
  return () => Array.from(noise(k++));
}

function assertRelClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxAbs = 0;
  let maxErr = 0;
  for (let j = 0; j < expected.length; j++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[j]));
    maxErr = Math.max(maxErr, Math.abs(actual[j] - expected[j]));
  }
  assert.ok(Number.isFinite(maxErr), `${what}: non-finite values`);
  assert.ok(maxErr <= rel * maxAbs, `${what}: max error ${maxErr} > ${rel} × ${maxAbs}`);
}

/** Runs ours, collecting the state after every reported step. */
async function runOurs(
  sampler: (d: Denoiser, x: Float64Array, s: ArrayLike<number>, o: AncestralOptions) => Promise<Float64Array>,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<{ final: Float64Array; trajectory: Float64Array[]; evals: number }> {
  const trajectory: Float64Array[] = [];
  let evals = 0;
  const counting: Denoiser = (x, sigma, i) => {
    evals++;
    return toyDenoiser(x, sigma, i);
  };
  const final = await sampler(counting, initialNoise(sigmas[0]), sigmas, {
    noise,
    ...opts,
    onStep: (_i, _n, info) => trajectory.push(Float64Array.from(info.x)),
  });
  return { final, trajectory, evals };
}

function assertTrajectory(ours: Float64Array[], ref: Vec[], rel: number, what: string): void {
  assert.equal(ours.length, ref.length, `${what}: step count`);
  ref.forEach((r, k) => assertRelClose(ours[k], r, rel, `${what}, after step ${k}`));
}

const schedules: Array<[string, Float64Array]> = [
  ['karras 20', getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX)],
  ['exponential 15', getSigmasExponential(15, SIGMA_MIN, SIGMA_MAX)],
  ['uniform 12', getSigmasUniform(12)],
  ['karras 3', getSigmasKarras(3, SIGMA_MIN, SIGMA_MAX)],
  ['dpm_2 plan, 10 steps (second-to-last dropped)', planSampling({ sampler: 'dpm_2', steps: 10 }).sigmas],
  ['single step', Float64Array.from([SIGMA_MAX, 0])],
];
const REL = 1e-12;

describe('new k-diffusion samplers follow the reference transcription step by step (float64)', () => {
  for (const [name, sigmas] of schedules) {
    const x0 = (): Vec => Array.from(initialNoise(sigmas[0]));

    it(`heun, dpm_2, lms — ${name}`, async () => {
      assertTrajectory((await runOurs(heun, sigmas)).trajectory, ref_heun(toyModel, x0(), sigmas), REL, 'heun');
      assertTrajectory((await runOurs(dpm_2, sigmas)).trajectory, ref_dpm_2(toyModel, x0(), sigmas), REL, 'dpm_2');
      assertTrajectory((await runOurs(lms, sigmas)).trajectory, ref_lms(toyModel, x0(), sigmas), REL, 'lms');
    });

    for (const [eta, sNoise] of [
      [1, 1],
      [0.6, 0.8],
      [0, 1],
    ]) {
      it(`ancestral and SDE samplers, η=${eta} s_noise=${sNoise} — ${name}`, async () => {
        const o = { eta, sNoise };
        const cases: Array<[string, Parameters<typeof runOurs>[0], Vec[]]> = [
          ['dpm_2_ancestral', dpm_2_ancestral, ref_dpm_2_ancestral(toyModel, x0(), sigmas, eta, sNoise, perStepNoise(sigmas))],
          ['dpmpp_2s_ancestral', dpmpp_2s_ancestral, ref_dpmpp_2s_ancestral(toyModel, x0(), sigmas, eta, sNoise, perStepNoise(sigmas))],
          ['dpmpp_sde', dpmpp_sde, ref_dpmpp_sde(toyModel, x0(), sigmas, eta, sNoise, brownianNoise(sigmas))],
          ['dpmpp_2m_sde', dpmpp_2m_sde, ref_dpmpp_2m_sde(toyModel, x0(), sigmas, eta, sNoise, perStepNoise(sigmas), 'midpoint')],
          ['dpmpp_2m_sde_heun', dpmpp_2m_sde_heun, ref_dpmpp_2m_sde(toyModel, x0(), sigmas, eta, sNoise, perStepNoise(sigmas), 'heun')],
          ['dpmpp_3m_sde', dpmpp_3m_sde, ref_dpmpp_3m_sde(toyModel, x0(), sigmas, eta, sNoise, perStepNoise(sigmas))],
        ];
        for (const [what, ours, ref] of cases) assertTrajectory((await runOurs(ours, sigmas, o)).trajectory, ref, REL, what);
      });
    }
  }

  for (const [name, sigmas] of schedules.filter(([, s]) => s.length > 2)) {
    const n = sigmas.length - 1;
    const sigmaMin = Math.min(...Array.from(sigmas).filter((s) => s > 0));
    const sigmaMax = Math.max(...sigmas);

    for (const eta of [1, 0]) {
      it(`dpm_fast η=${eta}: n = ${n} evaluations — ${name}`, async () => {
        const solver = new RefDPMSolver(toyModel);
        const ref = solver.dpm_solver_fast(Array.from(initialNoise(sigmas[0])), solver.t(sigmaMax), solver.t(sigmaMin), n, eta, 1, countingNoise());
        const ours = await runOurs(dpm_fast, sigmas, { eta });
        assertTrajectory(ours.trajectory, ref, REL, 'dpm_fast');
        assert.equal(ours.evals, n, 'dpm_fast spends exactly n model evaluations');
        assert.equal(solver.nfe, n);
      });

      it(`dpm_adaptive η=${eta} — ${name}`, async () => {
        const solver = new RefDPMSolver(toyModel);
        const ref = solver.dpm_solver_adaptive(Array.from(initialNoise(sigmas[0])), solver.t(sigmaMax), solver.t(sigmaMin), eta, 1, countingNoise());
        const ours = await runOurs(dpm_adaptive, sigmas, { eta });
        assertRelClose(ours.final, ref.x, REL, 'dpm_adaptive');
        assert.equal(ours.evals, solver.nfe, 'same model evaluations (accepted and rejected attempts)');
        assert.equal(solver.nfe, 3 * (ref.n_accept + ref.n_reject));
        assert.ok(ref.n_accept >= 2, `${ref.n_accept} accepted steps`);
      });
    }
  }

  it('the LMS coefficients equal a direct integration of the Lagrange basis', () => {
    const sigmas = getSigmasKarras(9, SIGMA_MIN, SIGMA_MAX);
    for (let i = 0; i < 9; i++) {
      const order = Math.min(i + 1, 4);
      let sum = 0;
      for (let j = 0; j < order; j++) {
        const c = linearMultistepCoeff(order, sigmas, i, j);
        assert.ok(Math.abs(c - linear_multistep_coeff(order, sigmas, i, j)) <= 1e-12 * Math.abs(sigmas[i]), `c(${i}, ${j})`);
        sum += c;
      }
      // The basis sums to 1, so the coefficients sum to the step length.
      assert.ok(Math.abs(sum - (sigmas[i + 1] - sigmas[i])) <= 1e-12 * sigmas[i], `Σc at step ${i}`);
    }
    assert.throws(() => linearMultistepCoeff(3, sigmas, 1, 0), RangeError);
  });
});
