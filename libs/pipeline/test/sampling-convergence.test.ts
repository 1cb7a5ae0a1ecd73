/**
 * Analytic checks of the samplers with the exact denoiser of Gaussian data: for x₀ ~ N(μ, s²) per
 * element, D(x, σ) = E[x₀ | x₀ + σε = x] = (s²·x + σ²·μ)/(s² + σ²). The probability-flow ODE then
 * has the closed-form solution x(σ) = μ + (x_T − μ)·√((s² + σ²)/(s² + σ_T²)), and every sampler —
 * deterministic or stochastic — must turn prior noise into samples of N(μ, s²).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  gaussianNoise,
  getSigmasExponential,
  nestedBrownianDraw,
  planSampling,
  samplers,
} from '../src/sampling/index.ts';
import type { Denoiser, SamplerMethod, SamplerName } from '../src/sampling/index.ts';

const MU = 0.3;
const S = 0.5;
const gaussianData: Denoiser = (x, sigma) => x.map((v) => (S * S * v + sigma * sigma * MU) / (S * S + sigma * sigma));

/** Max |sampler result − exact ODE solution at σ = 0| for 64 elements started at σ_0·ε. */
async function odeError(method: SamplerMethod, sigmas: Float64Array, opts: Record<string, number> = {}): Promise<number> {
  const x0 = Float64Array.from(gaussianNoise(1, 64), (v) => v * sigmas[0]);
  const out = await samplers[method](gaussianData, x0, sigmas, { eta: 0, ...opts });
  let err = 0;
  for (let j = 0; j < x0.length; j++) {
    const exact = MU + ((x0[j] - MU) * S) / Math.sqrt(S * S + sigmas[0] ** 2);
    err = Math.max(err, Math.abs(out[j] - exact));
  }
  return err;
}

// Down to σ = 1e-4 so that stopping short of 0 costs < 1e-7; what is left is discretisation error.
const schedule = (n: number): Float64Array => getSigmasExponential(n, 1e-4, 14.6);

describe('deterministic samplers converge to the exact probability-flow solution', () => {
  // [method, least error reduction from 10 to 40 steps (first order ≈ 4, second ≈ 16)]
  const cases: Array<[SamplerMethod, number]> = [
    ['euler', 3],
    ['heun', 6],
    ['dpm_2', 6],
    ['lms', 6],
    ['dpmpp_2m', 6],
    ['dpm_fast', 6],
  ];
  for (const [method, reduction] of cases) {
    it(`${method}: error shrinks with the step count`, async () => {
      const e10 = await odeError(method, schedule(10));
      const e40 = await odeError(method, schedule(40));
      assert.ok(e40 * reduction <= e10, `${method}: error ${e10} at 10 steps, ${e40} at 40`);
      if (method !== 'euler') assert.ok(e40 < 0.02, `${method}: error ${e40} at 40 steps`);
    });
  }

  it('the stochastic samplers with η = 0 are ODE solvers too', async () => {
    for (const method of ['dpm_2_ancestral', 'dpmpp_2s_ancestral', 'dpmpp_sde', 'dpmpp_2m_sde', 'dpmpp_2m_sde_heun', 'dpmpp_3m_sde'] as const) {
      const e10 = await odeError(method, schedule(10));
      const e40 = await odeError(method, schedule(40));
      assert.ok(e40 * 3 <= e10 && e40 < 0.05, `${method}: error ${e10} at 10 steps, ${e40} at 40`);
    }
  });

  it('dpm_adaptive: the error follows the tolerances, not the step count', async () => {
    const loose = await odeError('dpm_adaptive', schedule(10));
    assert.equal(await odeError('dpm_adaptive', schedule(40)), loose, 'only σ_min/σ_max matter');
    assert.ok(loose < 0.1, `default tolerances: ${loose}`);
    const tight = await odeError('dpm_adaptive', schedule(10), { rtol: 0.0005, atol: 0.00005 });
    assert.ok(tight * 10 < loose, `rtol 0.0005: ${tight} vs ${loose}`);
  });
});

describe('stochastic samplers draw from the data distribution (app pairing, 30 steps, η = 1)', () => {
  const N = 20_000;
  const stochastic: SamplerName[] = [
    'dpm_2_ancestral',
    'dpmpp_2s_ancestral',
    'dpmpp_sde',
    'dpmpp_2m_sde',
    'dpmpp_2m_sde_heun',
    'dpmpp_3m_sde',
    'dpm_fast',
    'dpm_adaptive',
  ];
  for (const sampler of stochastic) {
    it(`${sampler}: mean μ and standard deviation s`, async () => {
      const plan = planSampling({ sampler, steps: 30 });
      const x0 = Float64Array.from(gaussianNoise(3, N), (v) => v * plan.initNoiseScale);
      const out = await samplers[plan.method](gaussianData, x0, plan.sigmas, { noise: (k) => gaussianNoise(5, N, k + 1) });
      let mean = 0;
      for (const v of out) mean += v;
      mean /= N;
      let sq = 0;
      for (const v of out) sq += (v - mean) ** 2;
      const sd = Math.sqrt(sq / (N - 1));
      // Standard errors: 0.0035 for the mean, 0.0025 for the deviation.
      assert.ok(Math.abs(mean - MU) < 0.015, `${sampler}: mean ${mean}`);
      assert.ok(Math.abs(sd - S) < 0.025, `${sampler}: sd ${sd}`);
    });
  }

  it('the nested Brownian draw of DPM++ SDE is N(0, 1) with the correlation of overlapping increments', () => {
    const n = 100_000;
    const z1 = gaussianNoise(21, n, 0);
    const z2 = gaussianNoise(21, n, 1);
    const [sigma, mid, next] = [3, 1.2, 0.5];
    const w = nestedBrownianDraw(z1, z2, sigma, mid, next);
    let m = 0;
    let v = 0;
    let c = 0;
    for (let j = 0; j < n; j++) {
      m += w[j];
      v += w[j] * w[j];
      c += w[j] * z1[j];
    }
    assert.ok(Math.abs(m / n) < 0.015, `mean ${m / n}`);
    assert.ok(Math.abs(v / n - 1) < 0.02, `variance ${v / n}`);
    // Cov(W(σ)−W(next), W(σ)−W(mid)) / √(lengths) = √((σ − mid)/(σ − next)).
    assert.ok(Math.abs(c / n - Math.sqrt((sigma - mid) / (sigma - next))) < 0.015, `correlation ${c / n}`);
  });
});
