import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  denoisedFromModelOutput,
  discreteSchedule,
  getSigmasExponential,
  getSigmasKarras,
  getSigmasPolyexponential,
  getSigmasSgmUniform,
  getSigmasUniform,
  linspace,
  modelScalings,
  scaleModelInput,
  SIGMA_MAX,
  SIGMA_MIN,
  sigmaToT,
  tToSigma,
} from '../src/sampling/index.ts';

const close = (actual: number, expected: number, tol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
};

/** Rounds to `digits` decimals and compares with the printed value. */
const printed = (actual: number, expected: number, digits: number, what = ''): void => {
  assert.equal(Number(actual.toFixed(digits)), expected, `${what}: ${actual} prints as ${actual.toFixed(digits)}, expected ${expected}`);
};

describe('discrete schedule (contract §4.1)', () => {
  const s = discreteSchedule();

  it('has the reference end points', () => {
    assert.equal(s.sigmas.length, 1000);
    printed(SIGMA_MIN, 0.0291675, 7, 'σ_min');
    printed(SIGMA_MAX, 14.614642, 6, 'σ_max');
    assert.equal(SIGMA_MIN, s.sigmas[0]);
    assert.equal(SIGMA_MAX, s.sigmas[999]);
    printed(s.alphasCumprod[0], 0.99915, 5, 'ā_0');
    printed(s.alphasCumprod[999], 0.0046601, 7, 'ā_999');
  });

  it('stores ā and σ as float32 and builds β from the scaled-linear ramp in float64', () => {
    close(s.betas[0], 0.00085, 1e-15, 'β_0');
    close(s.betas[999], 0.012, 1e-15, 'β_999');
    for (let i = 0; i < 1000; i++) {
      assert.equal(Math.fround(s.alphasCumprod[i]), s.alphasCumprod[i]);
      assert.equal(Math.fround(s.sigmas[i]), s.sigmas[i]);
      close(s.sigmas[i], Math.sqrt((1 - s.alphasCumprod[i]) / s.alphasCumprod[i]), 2e-7 * s.sigmas[i], `σ_${i}`);
      assert.equal(s.logSigmas[i], Math.log(s.sigmas[i]));
      if (i > 0) assert.ok(s.sigmas[i] > s.sigmas[i - 1], 'σ ascending');
    }
  });

  it('is computed once and cached', () => {
    assert.equal(discreteSchedule(), s);
  });
});

describe('σ ↔ t (CompVisDenoiser, not quantised)', () => {
  it('maps table sigmas to their index exactly, σ_max → 999, σ_min → 0, σ = 0 → 0', () => {
    const { sigmas } = discreteSchedule();
    for (const i of [0, 1, 2, 47, 500, 941, 998, 999]) assert.equal(sigmaToT(sigmas[i]), i);
    assert.equal(sigmaToT(SIGMA_MAX), 999);
    assert.equal(sigmaToT(SIGMA_MIN), 0);
    assert.equal(sigmaToT(0), 0);
    // outside the table the weight is clamped
    assert.equal(sigmaToT(SIGMA_MAX * 2), 999);
    assert.equal(sigmaToT(SIGMA_MIN / 2), 0);
  });

  it('round-trips fractional t', () => {
    for (let t = 0; t <= 999; t += 0.37) close(sigmaToT(tToSigma(t)), t, 1e-9, `t=${t}`);
    close(sigmaToT(tToSigma(998.999)), 998.999, 1e-9);
  });

  it('interpolates log σ linearly between integer t', () => {
    const { logSigmas } = discreteSchedule();
    close(Math.log(tToSigma(100.25)), 0.75 * logSigmas[100] + 0.25 * logSigmas[101], 1e-14);
    close(tToSigma(999), SIGMA_MAX, 1e-12);
    assert.throws(() => tToSigma(-0.1), RangeError);
    assert.throws(() => tToSigma(999.5), RangeError);
  });
});

describe('model scalings', () => {
  it('v-prediction: c_in = 1/√(σ²+1), c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1)', () => {
    for (const sigma of [0, 0.03, 1, 14.6]) {
      const { cIn, cSkip, cOut } = modelScalings(sigma, 'v');
      close(cIn, 1 / Math.sqrt(sigma ** 2 + 1), 1e-15);
      close(cSkip, 1 / (sigma ** 2 + 1), 1e-15);
      close(cOut, -sigma / Math.sqrt(sigma ** 2 + 1), 1e-15);
    }
  });

  it('D = c_skip·x + c_out·v equals the VP x0 = α·x_VP − σ̂·v; eps: D = x − σ·ε', () => {
    const sigma = 2.5;
    const x = Float64Array.from([1, -2, 0.5]);
    const v = Float64Array.from([0.3, 0.1, -0.7]);
    const d = denoisedFromModelOutput(x, v, sigma, 'v');
    assert.ok(d instanceof Float64Array);
    const alpha = 1 / Math.sqrt(sigma ** 2 + 1);
    const xVp = scaleModelInput(x, sigma);
    for (let j = 0; j < 3; j++) {
      close(xVp[j], x[j] * alpha, 1e-15);
      close(d[j], alpha * xVp[j] - sigma * alpha * v[j], 1e-14);
    }
    const e = denoisedFromModelOutput(Float32Array.from(x), v, sigma, 'eps');
    assert.ok(e instanceof Float32Array);
    for (let j = 0; j < 3; j++) close(e[j], x[j] - sigma * v[j], 1e-6);
    assert.throws(() => denoisedFromModelOutput(x, [1, 2], sigma), RangeError);
  });
});

describe('sigma schedules (contract §4.3)', () => {
  it('Karras n = 20 matches the contract sigmas and model t', () => {
    const sig = getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX);
    assert.ok(sig instanceof Float64Array);
    const expected = [
      14.6146, 11.7254, 9.3402, 7.3836, 5.7894, 4.4998, 3.4648, 2.6408, 1.9909, 1.4832, 1.0908, 0.7909, 0.5647,
      0.3964, 0.273, 0.1842, 0.1213, 0.0779, 0.0485, 0.0292, 0,
    ];
    assert.equal(sig.length, 21);
    expected.forEach((e, i) => printed(sig[i], e, 4, `σ_${i}`));
    // The contract prints 639.62 for σ_7; k-diffusion's formula gives 639.6148 (also when emulated
    // in float32), which prints as 639.61 — the contract's last digit is off by one there.
    const ts = [
      999, 961.73, 921.04, 876.31, 826.79, 771.55, 709.53, 639.61, 560.98, 473.75, 380.13, 285.32, 197.08, 123.4,
      69.26, 34.7, 15.48, 5.99, 1.78, 0,
    ];
    ts.forEach((e, i) => printed(sigmaToT(sig[i]), e, 2, `t_${i}`));
    close(sigmaToT(sig[7]), 639.62, 0.0053, 't_7 vs the contract');
    assert.equal(sigmaToT(sig[20]), 0);
  });

  it('Karras follows the k-diffusion formula', () => {
    const n = 7;
    const rho = 5;
    const sig = getSigmasKarras(n, 0.1, 10, rho);
    for (let i = 0; i < n; i++) {
      const ramp = i / (n - 1);
      close(sig[i], (10 ** (1 / rho) + ramp * (0.1 ** (1 / rho) - 10 ** (1 / rho))) ** rho, 1e-12);
    }
    assert.equal(sig[n], 0);
  });

  it('exponential is log-linear, and polyexponential with ρ = 1 is the same', () => {
    const n = 12;
    const e = getSigmasExponential(n, SIGMA_MIN, SIGMA_MAX);
    const p = getSigmasPolyexponential(n, SIGMA_MIN, SIGMA_MAX);
    assert.equal(e.length, n + 1);
    assert.equal(e[n], 0);
    close(e[0], SIGMA_MAX, 1e-12);
    close(e[n - 1], SIGMA_MIN, 1e-15);
    for (let i = 0; i < n; i++) {
      close(Math.log(e[i]), Math.log(SIGMA_MAX) + (i / (n - 1)) * (Math.log(SIGMA_MIN) - Math.log(SIGMA_MAX)), 1e-12);
      close(p[i], e[i], 1e-12 * e[i]);
    }
    // ρ = 2: ramp² in log σ
    const p2 = getSigmasPolyexponential(n, SIGMA_MIN, SIGMA_MAX, 2);
    const r = 1 - 3 / (n - 1);
    close(p2[3], Math.exp(r * r * (Math.log(SIGMA_MAX) - Math.log(SIGMA_MIN)) + Math.log(SIGMA_MIN)), 1e-12);
  });

  it('uniform is t = linspace(999, 0, n) through t→σ', () => {
    const n = 20;
    const u = getSigmasUniform(n);
    assert.equal(u.length, n + 1);
    for (let k = 0; k < n; k++) close(sigmaToT(u[k]), 999 * (1 - k / (n - 1)), 1e-9, `t_${k}`);
    close(u[0], SIGMA_MAX, 1e-12);
    close(u[n - 1], SIGMA_MIN, 1e-15);
    assert.equal(u[n], 0);
  });

  it('sgm_uniform is t linear over n + 1 points from 999 to 0, last dropped', () => {
    const n = 10;
    const u = getSigmasSgmUniform(n);
    assert.equal(u.length, n + 1);
    for (let k = 0; k < n; k++) close(sigmaToT(u[k]), 999 * (1 - k / n), 1e-9, `t_${k}`);
    assert.ok(u[n - 1] > SIGMA_MIN);
    assert.equal(u[n], 0);
  });

  it('handles n = 1 like torch.linspace (a single σ_max)', () => {
    for (const sig of [
      getSigmasKarras(1, SIGMA_MIN, SIGMA_MAX),
      getSigmasExponential(1, SIGMA_MIN, SIGMA_MAX),
      getSigmasPolyexponential(1, SIGMA_MIN, SIGMA_MAX),
      getSigmasUniform(1),
      getSigmasSgmUniform(1),
    ]) {
      assert.equal(sig.length, 2);
      close(sig[0], SIGMA_MAX, 1e-12);
      assert.equal(sig[1], 0);
    }
    assert.throws(() => getSigmasKarras(0, SIGMA_MIN, SIGMA_MAX), RangeError);
  });

  it('linspace is symmetric like torch and hits both ends exactly', () => {
    const l = linspace(0.3, 7.1, 11);
    assert.equal(l[0], 0.3);
    assert.equal(l[10], 7.1);
    for (let i = 0; i < 11; i++) close(l[i], 0.3 + (i * 6.8) / 10, 1e-14);
    assert.deepEqual(Array.from(linspace(5, 1, 1)), [5]);
  });
});
