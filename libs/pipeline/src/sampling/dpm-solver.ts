/**
 * DPM-Solver (Lu et al. 2022, arXiv:2206.00927) in k-diffusion's form: "DPM fast" (fixed step
 * size, orders 3/2/1 spending exactly n model evaluations) and "DPM adaptive" (embedded 2/3-order
 * pair with a PID step-size controller), written from the formulas of k-diffusion's `DPMSolver`.
 *
 * Both work in t = −log σ on the ε estimate ε(x, t) = (x − D(x, σ(t)))/σ(t), between
 * σ_max = max(sigmas) and σ_min = min of the positive sigmas — the schedule only supplies those two
 * ends (and n for DPM fast). Like the app they run with η = 1 by default: after each (accepted)
 * step the ancestral noise ε_k = noise(k) is added (`randn_like` in the app: same law, not
 * bit-equal).
 */
import {
  allocLike,
  callDenoise,
  checkSigmas,
  drawNoise,
  getAncestralStep,
  type AncestralOptions,
  type Denoiser,
  type StepInfo,
} from './sampler-core.ts';
import { linspace, type SampleArray } from './schedule.ts';

const sigmaFn = (t: number): number => Math.exp(-t);
const tFn = (sigma: number): number => -Math.log(sigma);

type EpsCache = Map<string, Float64Array>;

/** ε evaluations with k-diffusion's per-step cache, counting model calls. */
class EpsSource<T extends SampleArray> {
  evals = 0;
  /** D of the last 'eps' evaluation (for progress info). */
  denoised: Float64Array = new Float64Array(0);

  constructor(
    private readonly denoise: Denoiser<T>,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async eps(cache: EpsCache, key: string, x: T, t: number, step: number): Promise<Float64Array> {
    const hit = cache.get(key);
    if (hit) return hit;
    const sigma = sigmaFn(t);
    const d = await callDenoise(this.denoise, x, sigma, step, this.signal);
    this.evals++;
    const eps = new Float64Array(x.length);
    for (let j = 0; j < eps.length; j++) eps[j] = (x[j] - d[j]) / sigma;
    if (key === 'eps') this.denoised = Float64Array.from(d);
    cache.set(key, eps);
    return eps;
  }

  /** DPM-Solver-1: x − σ(t')·expm1(h)·ε. */
  async step1(x: T, t: number, tNext: number, cache: EpsCache, step: number): Promise<T> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t, step);
    const c = sigmaFn(tNext) * Math.expm1(h);
    const out = allocLike(x);
    for (let j = 0; j < out.length; j++) out[j] = x[j] - c * eps[j];
    return out;
  }

  /**
   * DPM-Solver-2: s₁ = t + r₁h, u₁ = x − σ(s₁)·expm1(r₁h)·ε,
   * x' = x − σ(t')·expm1(h)·ε − σ(t')/(2r₁)·expm1(h)·(ε(u₁, s₁) − ε).
   */
  async step2(x: T, t: number, tNext: number, cache: EpsCache, step: number, r1 = 1 / 2): Promise<T> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t, step);
    const s1 = t + r1 * h;
    const u1 = allocLike(x);
    const cu = sigmaFn(s1) * Math.expm1(r1 * h);
    for (let j = 0; j < u1.length; j++) u1[j] = x[j] - cu * eps[j];
    const epsR1 = await this.eps(cache, 'eps_r1', u1, s1, step);
    const c0 = sigmaFn(tNext) * Math.expm1(h);
    const c1 = (sigmaFn(tNext) / (2 * r1)) * Math.expm1(h);
    const out = allocLike(x);
    for (let j = 0; j < out.length; j++) out[j] = x[j] - c0 * eps[j] - c1 * (epsR1[j] - eps[j]);
    return out;
  }

  /**
   * DPM-Solver-3: s₁ = t + r₁h, s₂ = t + r₂h, u₁ as in DPM-Solver-2,
   * u₂ = x − σ(s₂)·expm1(r₂h)·ε − σ(s₂)·(r₂/r₁)·(expm1(r₂h)/(r₂h) − 1)·(ε(u₁, s₁) − ε),
   * x' = x − σ(t')·expm1(h)·ε − σ(t')/r₂·(expm1(h)/h − 1)·(ε(u₂, s₂) − ε).
   */
  async step3(x: T, t: number, tNext: number, cache: EpsCache, step: number, r1 = 1 / 3, r2 = 2 / 3): Promise<T> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t, step);
    const s1 = t + r1 * h;
    const s2 = t + r2 * h;
    const u1 = allocLike(x);
    const cu1 = sigmaFn(s1) * Math.expm1(r1 * h);
    for (let j = 0; j < u1.length; j++) u1[j] = x[j] - cu1 * eps[j];
    const epsR1 = await this.eps(cache, 'eps_r1', u1, s1, step);
    const u2 = allocLike(x);
    const cu2a = sigmaFn(s2) * Math.expm1(r2 * h);
    const cu2b = sigmaFn(s2) * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1);
    for (let j = 0; j < u2.length; j++) u2[j] = x[j] - cu2a * eps[j] - cu2b * (epsR1[j] - eps[j]);
    const epsR2 = await this.eps(cache, 'eps_r2', u2, s2, step);
    const c0 = sigmaFn(tNext) * Math.expm1(h);
    const c2 = (sigmaFn(tNext) / r2) * (Math.expm1(h) / h - 1);
    const out = allocLike(x);
    for (let j = 0; j < out.length; j++) out[j] = x[j] - c0 * eps[j] - c2 * (epsR2[j] - eps[j]);
    return out;
  }
}

function sigmaRange(sigmas: ArrayLike<number>): { sigmaMin: number; sigmaMax: number } {
  let sigmaMin = Infinity;
  let sigmaMax = 0;
  for (let i = 0; i < sigmas.length; i++) {
    if (sigmas[i] > 0) sigmaMin = Math.min(sigmaMin, sigmas[i]);
    sigmaMax = Math.max(sigmaMax, sigmas[i]);
  }
  return { sigmaMin, sigmaMax };
}

/**
 * k-diffusion `sample_dpm_fast(sigma_min, sigma_max, n)` with n = sigmas.length − 1 model
 * evaluations: m = ⌊n/3⌋ + 1 steps evenly spaced in t from t(σ_max) to t(σ_min), orders
 * 3,…,3,2,1 (n divisible by 3) or 3,…,3,n mod 3. With η > 0 each step goes to
 * t̃ = min(t_end, −log σ_down) of get_ancestral_step(σ(t), σ(t')) and then adds
 * ε_i·s_noise·√(σ(t')² − σ(t̃)²).
 * Progress: onStep after each step with i + 1 = evaluations so far (the last is (n − 1, n)).
 */
export async function dpm_fast<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: AncestralOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  if (n === 0) return x.slice() as T;
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  const { sigmaMin, sigmaMax } = sigmaRange(sigmas);
  const tStart = tFn(sigmaMax);
  const tEnd = tFn(sigmaMin);
  if (!(tEnd > tStart) && eta) throw new RangeError('dpm_fast: needs σ_min < σ_max (at least 2 steps) when eta > 0');
  const m = Math.floor(n / 3) + 1;
  const ts = linspace(tStart, tEnd, m + 1);
  const orders = n % 3 === 0 ? [...Array<number>(m - 2).fill(3), 2, 1] : [...Array<number>(m - 1).fill(3), n % 3];
  const solver = new EpsSource(denoise, opts.signal);
  let cur = x.slice() as T;
  for (let i = 0; i < orders.length; i++) {
    const cache: EpsCache = new Map();
    const t = ts[i];
    const tNext = ts[i + 1];
    let tTarget = tNext;
    let su = 0;
    if (eta) {
      const { sigmaDown } = getAncestralStep(sigmaFn(t), sigmaFn(tNext), eta);
      tTarget = Math.min(tEnd, tFn(sigmaDown));
      su = (sigmaFn(tNext) ** 2 - sigmaFn(tTarget) ** 2) ** 0.5;
    }
    let next: T;
    if (orders[i] === 1) next = await solver.step1(cur, t, tTarget, cache, i);
    else if (orders[i] === 2) next = await solver.step2(cur, t, tTarget, cache, i);
    else next = await solver.step3(cur, t, tTarget, cache, i);
    if (su * sNoise !== 0) {
      const eps = drawNoise(opts, i, cur.length, 'dpm_fast');
      for (let j = 0; j < next.length; j++) next[j] = next[j] + su * sNoise * eps[j];
    }
    cur = next;
    opts.onStep?.(solver.evals - 1, n, { sigma: sigmaFn(t), sigmaNext: sigmaFn(tNext), x: cur, denoised: solver.denoised });
  }
  return cur;
}

export interface DpmAdaptiveOptions extends AncestralOptions {
  /** 2 (DPM-Solver-1/2 pair) or 3 (2/3 pair, default). */
  order?: 2 | 3;
  /** Relative tolerance (default 0.05). */
  rtol?: number;
  /** Absolute tolerance (default 0.0078). */
  atol?: number;
  /** First step size in t (default 0.05). */
  hInit?: number;
  /** PID controller coefficients (defaults 0, 1, 0: a plain integral controller). */
  pcoeff?: number;
  icoeff?: number;
  dcoeff?: number;
  /** Accept a step when the proposed growth factor is at least this (default 0.81). */
  acceptSafety?: number;
}

/**
 * k-diffusion `sample_dpm_adaptive(sigma_min, sigma_max)` (DPM-Solver-23 with k-diffusion's
 * defaults: order 3, rtol 0.05, atol 0.0078, h_init 0.05, I-controller, accept_safety 0.81).
 * Each attempt from s to t = min(t_end, s + h) (to t̃ with η > 0, as in `dpm_fast`) computes
 * x_low = DPM-Solver-2 (r₁ = ⅓) and x_high = DPM-Solver-3 (3 evaluations, shared), the error
 * ‖(x_low − x_high)/max(atol, rtol·max(|x_low|, |x_prev|))‖₂/√size, and the PID step factor
 * 1 + atan(Π errs^b − 1) (errs = 1/(error + 1e-8), b₁ = (p + i + d)/k, b₂ = −(p + 2d)/k, b₃ = d/k,
 * k = 1.5 with η > 0 else the order); factor ≥ accept_safety accepts x_high (+ noise), and h is
 * multiplied by the factor either way. Runs until s reaches t_end − 1e-5.
 *
 * The number of model evaluations is not known in advance (rejected attempts cost evaluations
 * too); n = sigmas.length − 1 only sets the progress scale: accepted steps report
 * i + 1 = ⌊n·(s − t_start)/(t_end − t_start)⌋ when it advances, and the last one (n − 1, n).
 * The denoiser's step index is the attempt number. A non-finite error estimate (e.g. a NaN
 * denoiser) throws instead of shrinking the step forever.
 */
export async function dpm_adaptive<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: DpmAdaptiveOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  if (n === 0) return x.slice() as T;
  const eta = opts.eta ?? 1;
  const sNoise = opts.sNoise ?? 1;
  const order = opts.order ?? 3;
  if (order !== 2 && order !== 3) throw new RangeError('dpm_adaptive: order should be 2 or 3');
  const rtol = opts.rtol ?? 0.05;
  const atol = opts.atol ?? 0.0078;
  const pcoeff = opts.pcoeff ?? 0;
  const icoeff = opts.icoeff ?? 1;
  const dcoeff = opts.dcoeff ?? 0;
  const acceptSafety = opts.acceptSafety ?? 0.81;
  const { sigmaMin, sigmaMax } = sigmaRange(sigmas);
  const tStart = tFn(sigmaMax);
  const tEnd = tFn(sigmaMin);
  const forward = tEnd > tStart;
  if (!forward && eta) throw new RangeError('dpm_adaptive: needs σ_min < σ_max (at least 2 steps) when eta > 0');

  // PID step-size controller (k-diffusion `PIDStepSizeController`).
  const k = eta ? 1.5 : order;
  const b1 = (pcoeff + icoeff + dcoeff) / k;
  const b2 = -(pcoeff + 2 * dcoeff) / k;
  const b3 = dcoeff / k;
  let h = Math.abs(opts.hInit ?? 0.05) * (forward ? 1 : -1);
  let errs: number[] = [];
  const proposeStep = (error: number): boolean => {
    const invError = 1 / (error + 1e-8);
    if (errs.length === 0) errs = [invError, invError, invError];
    errs[0] = invError;
    const factor = 1 + Math.atan(errs[0] ** b1 * errs[1] ** b2 * errs[2] ** b3 - 1);
    const accept = factor >= acceptSafety;
    if (accept) {
      errs[2] = errs[1];
      errs[1] = errs[0];
    }
    h *= factor;
    return accept;
  };

  const solver = new EpsSource(denoise, opts.signal);
  let cur = x.slice() as T;
  let xPrev: ArrayLike<number> = cur;
  let s = tStart;
  let attempt = 0;
  let accepted = 0;
  let reported = 0;
  const size = Math.sqrt(cur.length);
  while (forward ? s < tEnd - 1e-5 : s > tEnd + 1e-5) {
    const cache: EpsCache = new Map();
    const t = forward ? Math.min(tEnd, s + h) : Math.max(tEnd, s + h);
    let tTarget = t;
    let su = 0;
    if (eta) {
      const { sigmaDown } = getAncestralStep(sigmaFn(s), sigmaFn(t), eta);
      tTarget = Math.min(tEnd, tFn(sigmaDown));
      su = (sigmaFn(t) ** 2 - sigmaFn(tTarget) ** 2) ** 0.5;
    }
    let xLow: T;
    let xHigh: T;
    if (order === 2) {
      xLow = await solver.step1(cur, s, tTarget, cache, attempt);
      xHigh = await solver.step2(cur, s, tTarget, cache, attempt);
    } else {
      xLow = await solver.step2(cur, s, tTarget, cache, attempt, 1 / 3);
      xHigh = await solver.step3(cur, s, tTarget, cache, attempt);
    }
    let sq = 0;
    for (let j = 0; j < cur.length; j++) {
      const delta = Math.max(atol, rtol * Math.max(Math.abs(xLow[j]), Math.abs(xPrev[j])));
      const e = (xLow[j] - xHigh[j]) / delta;
      sq += e * e;
    }
    const error = Math.sqrt(sq) / size;
    if (!Number.isFinite(error)) throw new RangeError(`dpm_adaptive: error estimate is ${error} at attempt ${attempt} (σ = ${sigmaFn(s)})`);
    const sigmaFrom = sigmaFn(s);
    if (proposeStep(error)) {
      xPrev = xLow;
      if (su * sNoise !== 0) {
        const eps = drawNoise(opts, accepted, cur.length, 'dpm_adaptive');
        for (let j = 0; j < xHigh.length; j++) xHigh[j] = xHigh[j] + su * sNoise * eps[j];
      }
      cur = xHigh;
      s = t;
      accepted++;
      const finished = forward ? s >= tEnd - 1e-5 : s <= tEnd + 1e-5;
      const done = finished ? n : Math.min(n - 1, Math.floor((n * (s - tStart)) / (tEnd - tStart)));
      if (done > reported) {
        const info: StepInfo = { sigma: sigmaFrom, sigmaNext: sigmaFn(s), x: cur, denoised: solver.denoised };
        opts.onStep?.(done - 1, n, info);
        reported = done;
      }
    }
    attempt++;
  }
  return cur;
}
