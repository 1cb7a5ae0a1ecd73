import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../src/errors.ts';
import {
  dpmpp_2m,
  euler,
  euler_ancestral,
  gaussianNoise,
  getSigmasKarras,
  getSigmasUniform,
  planSampling,
  SAMPLER_METHODS,
  samplers,
  SIGMA_MAX,
  SIGMA_MIN,
} from '../src/sampling/index.ts';
import type { Denoiser, SampleArray, SamplerMethod } from '../src/sampling/index.ts';

// ---------------------------------------------------------------------------------------------
// An independent float64 transcription of k_diffusion/sampling.py (crowsonkb/k-diffusion),
// line by line on plain number[] "tensors". Only what the samplers under test need.

type Vec = number[];
type Model = (x: Vec, sigma: number) => Vec;
const add = (a: Vec, b: Vec): Vec => a.map((v, j) => v + b[j]);
const sub = (a: Vec, b: Vec): Vec => a.map((v, j) => v - b[j]);
const mul = (a: Vec, s: number): Vec => a.map((v) => v * s);
const div = (a: Vec, s: number): Vec => a.map((v) => v / s);

// def to_d(x, sigma, denoised): return (x - denoised) / utils.append_dims(sigma, x.ndim)
const to_d = (x: Vec, sigma: number, denoised: Vec): Vec => div(sub(x, denoised), sigma);

// def get_ancestral_step(sigma_from, sigma_to, eta=1.):
function get_ancestral_step(sigma_from: number, sigma_to: number, eta = 1): [number, number] {
  if (!eta) return [sigma_to, 0];
  const sigma_up = Math.min(sigma_to, eta * ((sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2)) / sigma_from ** 2) ** 0.5);
  const sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5;
  return [sigma_down, sigma_up];
}

// def sample_euler(model, x, sigmas, ..., s_churn=0., s_tmin=0., s_tmax=float('inf'), s_noise=1.)
function sample_euler(model: Model, x: Vec, sigmas: ArrayLike<number>, s_churn = 0, s_tmin = 0, s_tmax = Infinity): Vec {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const gamma = s_tmin <= sigmas[i] && sigmas[i] <= s_tmax ? Math.min(s_churn / (sigmas.length - 1), 2 ** 0.5 - 1) : 0;
    const sigma_hat = sigmas[i] * (gamma + 1);
    // gamma > 0 never happens here (s_churn = 0), so eps is unused
    const denoised = model(x, sigma_hat);
    const d = to_d(x, sigma_hat, denoised);
    const dt = sigmas[i + 1] - sigma_hat;
    x = add(x, mul(d, dt));
  }
  return x;
}

// def sample_euler_ancestral(model, x, sigmas, ..., eta=1., s_noise=1., noise_sampler=None)
function sample_euler_ancestral(
  model: Model,
  x: Vec,
  sigmas: ArrayLike<number>,
  eta: number,
  s_noise: number,
  noise_sampler: (i: number) => Vec,
): Vec {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    const [sigma_down, sigma_up] = get_ancestral_step(sigmas[i], sigmas[i + 1], eta);
    const d = to_d(x, sigmas[i], denoised);
    const dt = sigma_down - sigmas[i];
    x = add(x, mul(d, dt));
    if (sigmas[i + 1] > 0) x = add(x, mul(mul(noise_sampler(i), s_noise), sigma_up));
  }
  return x;
}

// def sample_dpmpp_2m(model, x, sigmas, ...)
function sample_dpmpp_2m(model: Model, x: Vec, sigmas: ArrayLike<number>): Vec {
  const sigma_fn = (t: number): number => Math.exp(-t);
  const t_fn = (sigma: number): number => -Math.log(sigma);
  let old_denoised: Vec | null = null;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = model(x, sigmas[i]);
    const t = t_fn(sigmas[i]);
    const t_next = t_fn(sigmas[i + 1]);
    const h = t_next - t;
    if (old_denoised === null || sigmas[i + 1] === 0) {
      x = sub(mul(x, sigma_fn(t_next) / sigma_fn(t)), mul(denoised, Math.expm1(-h)));
    } else {
      const h_last = t - t_fn(sigmas[i - 1]);
      const r = h_last / h;
      const denoised_d = sub(mul(denoised, 1 + 1 / (2 * r)), mul(old_denoised, 1 / (2 * r)));
      x = sub(mul(x, sigma_fn(t_next) / sigma_fn(t)), mul(denoised_d, Math.expm1(-h)));
    }
    old_denoised = denoised;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------

const N = 64;
/** A nonlinear toy denoiser coupling neighbouring elements and depending on σ. */
const toyModel: Model = (x, sigma) =>
  x.map(
    (v, j) =>
      Math.tanh((0.8 * v) / Math.sqrt(sigma * sigma + 1) + 0.3 * Math.sin(j)) * (1 + 0.2 * Math.cos(sigma)) +
      (0.05 * x[(j + 1) % x.length]) / (1 + sigma),
  );
const toyDenoiser: Denoiser = (x, sigma) => toyModel(Array.from(x), sigma);

function initialNoise(scale: number): Float64Array {
  const e = gaussianNoise(7, N);
  return Float64Array.from(e, (v) => v * scale);
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

/** `sigmas` for the k-diffusion style methods; `pndm` runs on table sigmas only: its plan's, as many steps. */
const sigmasFor = (method: string, sigmas: Float64Array): Float64Array =>
  method === 'pndm' ? planSampling({ sampler: 'diffuser_pndm', steps: sigmas.length - 1 }).sigmas : sigmas;

const schedules: Array<[string, Float64Array]> = [
  ['karras 20', getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX)],
  ['uniform 12', getSigmasUniform(12)],
  ['karras 3', getSigmasKarras(3, SIGMA_MIN, SIGMA_MAX)],
  ['single step', Float64Array.from([SIGMA_MAX, 0])],
];

describe('samplers agree with the k-diffusion transcription (float64, 1e-12)', () => {
  for (const [name, sigmas] of schedules) {
    it(`euler, ${name}`, async () => {
      const x0 = initialNoise(sigmas[0]);
      const ours = await euler(toyDenoiser, x0, sigmas);
      assert.ok(ours instanceof Float64Array);
      assertRelClose(ours, sample_euler(toyModel, Array.from(x0), sigmas), 1e-12, 'euler');
    });

    it(`dpmpp_2m, ${name}`, async () => {
      const x0 = initialNoise(sigmas[0]);
      const ours = await dpmpp_2m(toyDenoiser, x0, sigmas);
      assertRelClose(ours, sample_dpmpp_2m(toyModel, Array.from(x0), sigmas), 1e-12, 'dpmpp_2m');
    });

    for (const [eta, sNoise] of [
      [1, 1],
      [0.5, 0.7],
      [0, 1],
    ]) {
      it(`euler_ancestral η=${eta} s_noise=${sNoise}, ${name}`, async () => {
        const x0 = initialNoise(sigmas[0]);
        const noise = (i: number): Float32Array => gaussianNoise(11, N, i + 1);
        const ours = await euler_ancestral(toyDenoiser, x0, sigmas, { noise, eta, sNoise });
        const ref = sample_euler_ancestral(toyModel, Array.from(x0), sigmas, eta, sNoise, (i) => Array.from(noise(i)));
        assertRelClose(ours, ref, 1e-12, 'euler_ancestral');
      });
    }
  }

  it('euler_ancestral with η = 0 is euler', async () => {
    const sigmas = getSigmasUniform(10);
    const x0 = initialNoise(sigmas[0]);
    const a = await euler_ancestral(toyDenoiser, x0, sigmas, { eta: 0 });
    const b = await euler(toyDenoiser, x0, sigmas);
    assert.deepEqual(a, b);
  });

  it('euler_ancestral needs a noise source when it adds noise', async () => {
    const sigmas = getSigmasUniform(4);
    await assert.rejects(euler_ancestral(toyDenoiser, initialNoise(sigmas[0]), sigmas), TypeError);
  });

  it('does not modify the input array', async () => {
    const sigmas = getSigmasKarras(5, SIGMA_MIN, SIGMA_MAX);
    const x0 = initialNoise(sigmas[0]);
    const copy = x0.slice();
    for (const [name, s] of Object.entries(samplers)) await s(toyDenoiser, x0, sigmasFor(name, sigmas), { noise: (i) => gaussianNoise(1, N, i) });
    assert.deepEqual(x0, copy);
  });
});

describe('samplers end on the clean image', () => {
  const image = Float64Array.from({ length: N }, (_, j) => Math.sin(j * 0.7) * 0.9 - 0.1);
  const fixed: Denoiser = () => image;
  for (const [name, sigmas] of schedules) {
    it(`a denoiser that always returns the same image, ${name}`, async () => {
      const x0 = initialNoise(sigmas[0]);
      assertRelClose(await euler(fixed, x0, sigmas), image, 1e-9, 'euler');
      assertRelClose(await dpmpp_2m(fixed, x0, sigmas), image, 1e-9, 'dpmpp_2m');
      const noise = (i: number): Float32Array => gaussianNoise(3, N, i + 1);
      assertRelClose(await euler_ancestral(fixed, x0, sigmas, { noise }), image, 1e-9, 'euler_ancestral');
    });
  }
});

describe('sampler plumbing', () => {
  const sigmas = getSigmasKarras(8, SIGMA_MIN, SIGMA_MAX);
  const noise = (i: number): Float32Array => gaussianNoise(5, N, i + 1);

  it('float32 input gives a Float32Array close to the float64 run', async () => {
    const x64 = initialNoise(sigmas[0]);
    const x32 = Float32Array.from(x64);
    const den32: Denoiser<Float32Array> = (x, sigma) => Float32Array.from(toyModel(Array.from(x), sigma));
    for (const [name, s] of Object.entries(samplers)) {
      const r32 = await s(den32, x32, sigmasFor(name, sigmas), { noise });
      assert.ok(r32 instanceof Float32Array, name);
      const r64 = await s(toyDenoiser, x64, sigmasFor(name, sigmas), { noise });
      assert.ok(r64 instanceof Float64Array, name);
      assertRelClose(r32, r64, 1e-4, name);
    }
  });

  it('accepts a denoiser that returns a Promise', async () => {
    const x0 = initialNoise(sigmas[0]);
    const asyncDen: Denoiser = async (x, sigma) => {
      await new Promise((r) => setTimeout(r, 1));
      return Float64Array.from(toyModel(Array.from(x), sigma));
    };
    for (const [name, s] of Object.entries(samplers)) {
      const sg = sigmasFor(name, sigmas);
      assert.deepEqual(await s(asyncDen, x0, sg, { noise }), await s(toyDenoiser, x0, sg, { noise }), name);
    }
  });

  // Denoiser calls of each fixed-step method for 8 steps ending in σ = 0: two-stage samplers call
  // twice per step except in the last (an Euler step to 0).
  const TWO_STAGE = new Set<SamplerMethod>(['heun', 'dpm_2', 'dpm_2_ancestral', 'dpmpp_2s_ancestral', 'dpmpp_sde']);
  // PNDM's call pattern (four per step in its first three) is checked in sampling-pndm.test.ts.
  const FIXED_STEP = SAMPLER_METHODS.filter((m) => m !== 'dpm_fast' && m !== 'dpm_adaptive' && m !== 'pndm');
  const evalsFor = (m: SamplerMethod, steps: number): number => (TWO_STAGE.has(m) ? 2 * steps - 1 : steps);

  it('fixed-step samplers: step i starts at σ_i, two-stage ones add one call inside the step, one onStep per step', async () => {
    for (const name of FIXED_STEP) {
      const calls: Array<[number, number]> = [];
      const steps: Array<[number, number]> = [];
      await samplers[name](
        (x, sigma, i) => {
          calls.push([i, sigma]);
          return toyModel(Array.from(x), sigma);
        },
        initialNoise(sigmas[0]),
        sigmas,
        {
          noise,
          onStep: (i, n, info) => {
            steps.push([i, n]);
            assert.equal(info.sigma, sigmas[i]);
            assert.equal(info.sigmaNext, sigmas[i + 1]);
            assert.equal(info.x.length, N);
          },
        },
      );
      assert.deepEqual(steps, [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, 8]), `${name}: progress`);
      assert.equal(calls.length, evalsFor(name, 8), `${name}: denoiser calls`);
      for (let i = 0; i < 8; i++) {
        const ofStep = calls.filter(([k]) => k === i).map(([, sigma]) => sigma);
        assert.equal(ofStep[0], sigmas[i], `${name}: first call of step ${i}`);
        assert.equal(ofStep.length, TWO_STAGE.has(name) && i < 7 ? 2 : 1, `${name}: calls in step ${i}`);
        if (ofStep.length === 2) {
          // Below σ_i; ancestral ones aim at σ_down < σ_{i+1}, so their midpoint may lie below σ_{i+1}.
          assert.ok(ofStep[1] < sigmas[i] && ofStep[1] > 0, `${name}: second call of step ${i} at σ = ${ofStep[1]}`);
        }
      }
      assert.deepEqual(
        calls.map(([i]) => i),
        calls.map(([i]) => i).sort((a, b) => a - b),
        `${name}: step indices in order`,
      );
    }
  });

  it('dpm_fast: n evaluations in all, progress after each solver step counts evaluations', async () => {
    const steps: Array<[number, number]> = [];
    let calls = 0;
    const den: Denoiser = (x, sigma) => {
      calls++;
      return toyModel(Array.from(x), sigma);
    };
    await samplers.dpm_fast(den, initialNoise(sigmas[0]), sigmas, { noise, onStep: (i, n) => steps.push([i, n]) });
    assert.equal(calls, 8);
    assert.deepEqual(steps, [[2, 8], [5, 8], [7, 8]], 'orders 3, 3, 2');
  });

  it('dpm_adaptive: progress rises monotonically to (n − 1, n) whatever the number of evaluations', async () => {
    const steps: number[] = [];
    let calls = 0;
    const den: Denoiser = (x, sigma) => {
      calls++;
      return toyModel(Array.from(x), sigma);
    };
    await samplers.dpm_adaptive(den, initialNoise(sigmas[0]), sigmas, {
      noise,
      onStep: (i, n) => {
        assert.equal(n, 8);
        steps.push(i);
      },
    });
    assert.ok(steps.length >= 2, `progress events ${steps.join(',')}`);
    for (let k = 1; k < steps.length; k++) assert.ok(steps[k] > steps[k - 1], `progress ${steps.join(',')}`);
    assert.equal(steps.at(-1), 7);
    assert.equal(calls % 3, 0, 'three evaluations per attempt');
  });

  it('an abort signal cancels before the next denoiser call with PipelineError CANCELLED', async () => {
    for (const name of SAMPLER_METHODS) {
      const controller = new AbortController();
      let calls = 0;
      let callsAtAbort = -1;
      const den: Denoiser = (x, sigma) => {
        calls++;
        return toyModel(Array.from(x), sigma);
      };
      const sg = sigmasFor(name, sigmas);
      await assert.rejects(
        samplers[name](den, initialNoise(sg[0]), sg, {
          noise,
          signal: controller.signal,
          onStep: (i) => {
            if (i >= 2 && callsAtAbort < 0) {
              controller.abort();
              callsAtAbort = calls;
            }
          },
        }),
        (e: unknown) => isPipelineError(e) && e.code === 'CANCELLED' && /cancelled at step \d+/.test(e.message),
        name,
      );
      assert.equal(calls, callsAtAbort, `${name}: no denoiser call after the abort`);
      if ((FIXED_STEP as readonly string[]).includes(name)) assert.equal(calls, TWO_STAGE.has(name) ? 6 : 3, `${name}: calls in the first 3 steps`);
      if (name === 'pndm') assert.equal(calls, 12, 'pndm: three Runge–Kutta blocks of four calls');

      const pre = new AbortController();
      pre.abort();
      calls = 0;
      await assert.rejects(samplers[name](den, initialNoise(sg[0]), sg, { noise, signal: pre.signal }), (e: unknown) => isPipelineError(e) && e.code === 'CANCELLED');
      assert.equal(calls, 0);
    }
  });

  it('two-stage samplers stop between the two calls of a step', async () => {
    for (const name of TWO_STAGE) {
      const controller = new AbortController();
      let calls = 0;
      const den: Denoiser = (x, sigma) => {
        calls++;
        if (calls === 3) controller.abort(); // the first call of step 1
        return toyModel(Array.from(x), sigma);
      };
      await assert.rejects(
        samplers[name](den, initialNoise(sigmas[0]), sigmas, { noise, signal: controller.signal }),
        (e: unknown) => isPipelineError(e) && e.code === 'CANCELLED' && /cancelled at step 1/.test(e.message),
        name,
      );
      assert.equal(calls, 3, name);
    }
  });

  it('rejects bad sigmas and wrong-length denoiser output', async () => {
    const x0 = initialNoise(1);
    await assert.rejects(euler(toyDenoiser, x0, [1, 0, 0]), RangeError);
    await assert.rejects(euler(toyDenoiser, x0, [1, Number.NaN, 0]), RangeError);
    await assert.rejects(euler(() => [1, 2, 3], x0, [1, 0]), RangeError);
  });

  it('keeps its own copy of what it needs later (a reused output buffer is safe)', async () => {
    const x0 = initialNoise(sigmas[0]);
    const buf = new Float64Array(N);
    const reusing: Denoiser = (x, sigma) => {
      buf.set(toyModel(Array.from(x), sigma));
      return buf;
    };
    for (const [name, s] of Object.entries(samplers)) {
      const sg = sigmasFor(name, sigmas);
      assert.deepEqual(await s(reusing, x0, sg, { noise }), await s(toyDenoiser, x0, sg, { noise }), name);
    }
  });

  it('zero steps (sigmas of length 1) returns a copy of x', async () => {
    const x0: SampleArray = initialNoise(2);
    const r = await euler(toyDenoiser, x0, [2]);
    assert.deepEqual(r, x0);
    assert.notEqual(r, x0);
  });
});
