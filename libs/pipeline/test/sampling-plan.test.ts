import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../src/errors.ts';
import {
  denoisedFromModelOutput,
  discreteSchedule,
  gaussianNoise,
  getSigmasKarras,
  planSampling,
  progressOfTimestep,
  samplers,
  SAMPLERS,
  scaleModelInput,
  SCHEDULERS,
  SIGMA_MAX,
  SIGMA_MIN,
  sigmaToT,
} from '../src/sampling/index.ts';
import type { Denoiser, SamplingPlan } from '../src/sampling/index.ts';

const close = (actual: number, expected: number, tol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
};

function assertRelClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxAbs = 0;
  let maxErr = 0;
  for (let j = 0; j < expected.length; j++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[j]));
    maxErr = Math.max(maxErr, Math.abs(actual[j] - expected[j]));
  }
  assert.ok(Number.isFinite(maxErr) && maxErr <= rel * maxAbs, `${what}: max error ${maxErr} > ${rel} × ${maxAbs}`);
}

const rejectsWith = (fn: () => unknown, code: string, field: string): void =>
  assert.throws(fn, (e: unknown) => isPipelineError(e) && e.code === code && e.field === field);

describe('planSampling: reference numbers of the contract', () => {
  it('diffuser_dpm n = 20 (default): leading timesteps 941 … 48 and table sigmas', () => {
    const p = planSampling({ sampler: 'diffuser_dpm', scheduler: 'automatic', steps: 20 });
    assert.deepEqual(
      Array.from(p.timesteps),
      Array.from({ length: 20 }, (_, k) => 941 - 47 * k),
    );
    assert.equal(p.timesteps[19], 48);
    const expected = [
      10.425, 8.0882, 6.3803, 5.111, 4.1521, 3.4157, 2.8412, 2.3857, 2.019, 1.719, 1.4698, 1.2596, 1.0796, 0.923, 0.7845,
      0.6599, 0.5457, 0.4381, 0.3326, 0.2204,
    ];
    expected.forEach((e, k) => assert.equal(Number(p.sigmas[k].toFixed(4)), e, `σ_${k} = ${p.sigmas[k]}`));
    assert.equal(p.sigmas.length, 21);
    assert.equal(p.sigmas[20], 0);
    const table = discreteSchedule().sigmas;
    for (let k = 0; k < 20; k++) assert.equal(p.sigmas[k], table[p.timesteps[k]]);
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
    assert.equal(p.method, 'dpmpp_2m');
    assert.equal(p.schedule, 'leading');
    assert.deepEqual(planSampling(), p, 'defaults: diffuser_dpm, automatic, 20 steps');
  });

  it('diffuser_ddim n = 20: timesteps 951 … 1, Euler between table sigmas, last to 0', () => {
    const p = planSampling({ sampler: 'ddim', scheduler: 'automatic', steps: 20 });
    assert.deepEqual(
      Array.from(p.timesteps),
      Array.from({ length: 20 }, (_, k) => 951 - 50 * k),
    );
    const table = discreteSchedule().sigmas;
    for (let k = 0; k < 20; k++) assert.equal(p.sigmas[k], table[p.timesteps[k]]);
    assert.equal(p.sigmas[20], 0);
    assert.equal(p.method, 'euler');
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
  });

  it('dpmpp_2m automatic = Karras with continuous model t, x0 = ε·σ_0', () => {
    const p = planSampling({ sampler: 'dpmpp_2m', scheduler: 'automatic', steps: 20 });
    assert.equal(p.schedule, 'karras');
    assert.deepEqual(p.sigmas, getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX));
    const ts = [
      999, 961.73, 921.04, 876.31, 826.79, 771.55, 709.53, 639.61, 560.98, 473.75, 380.13, 285.32, 197.08, 123.4,
      69.26, 34.7, 15.48, 5.99, 1.78,
    ];
    ts.forEach((e, k) => assert.equal(Number(p.timesteps[k].toFixed(2)), e, `t_${k} = ${p.timesteps[k]}`));
    assert.equal(p.initNoiseScale, p.sigmas[0]);
    assert.equal(p.method, 'dpmpp_2m');
  });

  it('euler and euler_ancestral automatic = uniform in t', () => {
    for (const sampler of ['euler', 'euler_ancestral'] as const) {
      const p = planSampling({ sampler, steps: 10 });
      assert.equal(p.schedule, 'uniform');
      assert.equal(p.method, sampler);
      for (let k = 0; k < 10; k++) close(p.timesteps[k], 999 * (1 - k / 9), 1e-9);
      assert.equal(p.initNoiseScale, p.sigmas[0]);
    }
  });

  it('diffuser_dpm with Karras: float32 Karras sigmas, integer t = round(σ→t)', () => {
    const p = planSampling({ sampler: 'diffuser_dpm', scheduler: 'karras', steps: 20 });
    const k = getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX);
    assert.deepEqual(
      Array.from(p.timesteps),
      [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
    );
    for (let i = 0; i < 20; i++) {
      assert.equal(p.sigmas[i], Math.fround(k[i]));
      assert.equal(p.timesteps[i], Math.round(sigmaToT(k[i])));
    }
    assert.equal(p.sigmas[20], 0);
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
    // other schedulers do not apply to diffuser_dpm
    assert.deepEqual(planSampling({ sampler: 'diffuser_dpm', scheduler: 'exponential' }).timesteps, planSampling().timesteps);
  });

  it('guidance progress tr = 1 − t/999', () => {
    assert.equal(progressOfTimestep(999), 0);
    assert.equal(progressOfTimestep(0), 1);
  });
});

describe('planSampling: every combination is well formed', () => {
  it('sigmas descend to 0, timesteps lie in [0, 999] (integers for diffusers)', () => {
    for (const sampler of SAMPLERS) {
      for (const scheduler of SCHEDULERS) {
        for (const steps of [1, 2, 3, 7, 20, 33, 50, 100]) {
          const p: SamplingPlan = planSampling({ sampler, scheduler, steps });
          const what = `${sampler}/${scheduler}/${steps}`;
          assert.equal(p.sigmas.length, steps + 1, what);
          assert.equal(p.timesteps.length, steps, what);
          assert.equal(p.sigmas[steps], 0, what);
          for (let k = 0; k < steps; k++) {
            assert.ok(p.sigmas[k] > p.sigmas[k + 1], `${what}: σ_${k}`);
            assert.ok(p.timesteps[k] >= 0 && p.timesteps[k] <= 999, `${what}: t_${k}`);
            if (k > 0) assert.ok(p.timesteps[k] <= p.timesteps[k - 1], `${what}: t descending`);
            if (sampler === 'diffuser_dpm' || sampler === 'ddim') assert.ok(Number.isInteger(p.timesteps[k]), what);
          }
          assert.ok(p.initNoiseScale >= p.sigmas[0], what);
          assert.ok(p.method in samplers, what);
        }
      }
    }
  });

  it('matches diffusers set_timesteps (leading, steps_offset 1) for every step count', () => {
    for (let n = 1; n <= 100; n++) {
      // DPMSolverMultistepScheduler: step_ratio = last_timestep // (n + 1);
      // (np.arange(0, n + 1) * step_ratio).round()[::-1][:-1] + steps_offset
      const ratio = Math.floor(1000 / (n + 1));
      const dpm = Array.from({ length: n + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + 1);
      assert.deepEqual(Array.from(planSampling({ sampler: 'diffuser_dpm', steps: n }).timesteps), dpm, `dpm n=${n}`);
      // DDIMScheduler: step_ratio = 1000 // n; (np.arange(0, n) * step_ratio).round()[::-1] + steps_offset
      const r2 = Math.floor(1000 / n);
      const ddim = Array.from({ length: n }, (_, i) => i * r2).reverse().map((t) => t + 1);
      assert.deepEqual(Array.from(planSampling({ sampler: 'ddim', steps: n }).timesteps), ddim, `ddim n=${n}`);
    }
  });
});

describe('planSampling: errors', () => {
  it('unknown sampler → UNKNOWN_SAMPLER naming settings.sampler and listing the valid ones', () => {
    assert.throws(
      () => planSampling({ sampler: 'DPM adaptive' }),
      (e: unknown) => {
        assert.ok(isPipelineError(e));
        assert.equal(e.code, 'UNKNOWN_SAMPLER');
        assert.equal(e.field, 'settings.sampler');
        for (const s of SAMPLERS) assert.ok(e.message.includes(s), `message lists ${s}: ${e.message}`);
        return true;
      },
    );
  });

  it('steps outside 1..100 or not an integer → INVALID_KNOB settings.steps', () => {
    for (const steps of [0, 101, -5, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      rejectsWith(() => planSampling({ sampler: 'euler', steps }), 'INVALID_KNOB', 'settings.steps');
    }
  });

  it('unknown scheduler → INVALID_KNOB settings.scheduler', () => {
    rejectsWith(() => planSampling({ scheduler: 'Karras' }), 'INVALID_KNOB', 'settings.scheduler');
  });
});

// ---------------------------------------------------------------------------------------------
// diffusers in VP form, transcribed from DPMSolverMultistepScheduler (dpmsolver++, solver_order 2,
// midpoint, lower_order_final, final_sigmas_type "zero", v_prediction) and DDIMScheduler (η = 0,
// set_alpha_to_one, v_prediction), checked against our VE runs after x_VE = x_VP·√(σ² + 1).

type Vec = number[];
type VModel = (xVp: Vec, t: number) => Vec;
const N = 48;

/** A nonlinear toy v-model of (VP sample, integer model timestep). */
const toyV: VModel = (x, t) =>
  x.map((v, j) => Math.tanh(0.5 * v + 0.001 * t * Math.cos(j)) + 0.1 * x[(j + 2) % x.length] * Math.sin(t / 100));

function diffusersDpmSolverVP(sigmas: ArrayLike<number>, timesteps: ArrayLike<number>, noise: Vec, model: VModel): Vec[] {
  const solver_order = 2;
  const lower_order_final_cfg = true;
  const euler_at_final = false;
  const final_sigmas_type_zero = true;
  const n = timesteps.length;
  const _sigma_to_alpha_sigma_t = (sigma: number): [number, number] => {
    const alpha_t = 1 / (sigma ** 2 + 1) ** 0.5;
    return [alpha_t, sigma * alpha_t];
  };
  const model_outputs: Array<Vec | null> = [null, null];
  let lower_order_nums = 0;
  let sample = noise.slice(); // init_noise_sigma = 1
  const trajectory: Vec[] = [];
  for (let step_index = 0; step_index < n; step_index++) {
    const model_output_raw = model(sample, timesteps[step_index]); // scale_model_input is the identity
    const lower_order_final =
      step_index === n - 1 && (euler_at_final || (lower_order_final_cfg && n < 15) || final_sigmas_type_zero);
    // convert_model_output: dpmsolver++ with v_prediction
    {
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const x0_pred = sample.map((s, j) => alpha_t * s - sigma_t * model_output_raw[j]);
      model_outputs[0] = model_outputs[1];
      model_outputs[1] = x0_pred;
    }
    const model_output = model_outputs[1]!;
    let prev_sample: Vec;
    if (lower_order_nums < 1 || lower_order_final) {
      // dpm_solver_first_order_update
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index + 1]);
      const [alpha_s, sigma_s] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const lambda_t = Math.log(alpha_t) - Math.log(sigma_t);
      const lambda_s = Math.log(alpha_s) - Math.log(sigma_s);
      const h = lambda_t - lambda_s;
      prev_sample = sample.map((s, j) => (sigma_t / sigma_s) * s - alpha_t * (Math.exp(-h) - 1.0) * model_output[j]);
    } else {
      // multistep_dpm_solver_second_order_update, midpoint
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index + 1]);
      const [alpha_s0, sigma_s0] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const [alpha_s1, sigma_s1] = _sigma_to_alpha_sigma_t(sigmas[step_index - 1]);
      const lambda_t = Math.log(alpha_t) - Math.log(sigma_t);
      const lambda_s0 = Math.log(alpha_s0) - Math.log(sigma_s0);
      const lambda_s1 = Math.log(alpha_s1) - Math.log(sigma_s1);
      const m0 = model_outputs[1]!;
      const m1 = model_outputs[0]!;
      const h = lambda_t - lambda_s0;
      const h_0 = lambda_s0 - lambda_s1;
      const r0 = h_0 / h;
      const D0 = m0;
      const D1 = m0.map((v, j) => (1.0 / r0) * (v - m1[j]));
      prev_sample = sample.map(
        (s, j) =>
          (sigma_t / sigma_s0) * s - alpha_t * (Math.exp(-h) - 1.0) * D0[j] - 0.5 * (alpha_t * (Math.exp(-h) - 1.0)) * D1[j],
      );
    }
    if (lower_order_nums < solver_order) lower_order_nums += 1;
    sample = prev_sample;
    trajectory.push(sample);
  }
  return trajectory;
}

function diffusersDdimVP(alphasCumprod: ArrayLike<number>, n: number, noise: Vec, model: VModel): Vec[] {
  const step_ratio = Math.floor(1000 / n);
  const timesteps = Array.from({ length: n }, (_, i) => i * step_ratio).reverse().map((t) => t + 1);
  const final_alpha_cumprod = 1.0; // set_alpha_to_one
  let sample = noise.slice();
  const trajectory: Vec[] = [];
  for (const timestep of timesteps) {
    const model_output = model(sample, timestep);
    const prev_timestep = timestep - Math.floor(1000 / n);
    const alpha_prod_t = alphasCumprod[timestep];
    const alpha_prod_t_prev = prev_timestep >= 0 ? alphasCumprod[prev_timestep] : final_alpha_cumprod;
    const beta_prod_t = 1 - alpha_prod_t;
    const pred_original_sample = sample.map((s, j) => alpha_prod_t ** 0.5 * s - beta_prod_t ** 0.5 * model_output[j]);
    const pred_epsilon = sample.map((s, j) => alpha_prod_t ** 0.5 * model_output[j] + beta_prod_t ** 0.5 * s);
    const std_dev_t = 0; // η = 0
    const pred_sample_direction = pred_epsilon.map((e) => (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 * e);
    sample = pred_original_sample.map((x0, j) => alpha_prod_t_prev ** 0.5 * x0 + pred_sample_direction[j]);
    trajectory.push(sample);
  }
  return trajectory;
}

/** Run a plan in VE form with the v-model behind the standard wrapper; returns the VE trajectory. */
async function runVE(plan: SamplingPlan, noise: Vec): Promise<{ final: Float64Array; trajectory: Float64Array[] }> {
  const denoise: Denoiser<Float64Array> = (x, sigma, i) => {
    const v = toyV(Array.from(scaleModelInput(x, sigma)), plan.timesteps[i]);
    return denoisedFromModelOutput(x, v, sigma, 'v');
  };
  const trajectory: Float64Array[] = [];
  const x0 = Float64Array.from(noise, (e) => e * plan.initNoiseScale);
  const final = await samplers[plan.method](denoise, x0, plan.sigmas, {
    onStep: (_i, _n, info) => trajectory.push(Float64Array.from(info.x)),
  });
  return { final, trajectory };
}

describe('diffusers VP form equals our VE runs', () => {
  const noise = Array.from(gaussianNoise(2024, N));

  for (const [scheduler, steps] of [
    ['automatic', 20],
    ['automatic', 10],
    ['automatic', 1],
    ['automatic', 2],
    ['karras', 20],
    ['karras', 8],
  ] as const) {
    it(`diffuser_dpm (${scheduler}, ${steps} steps) = DPM++ 2M in VE form, 1e-9`, async () => {
      const plan = planSampling({ sampler: 'diffuser_dpm', scheduler, steps });
      const vp = diffusersDpmSolverVP(plan.sigmas, plan.timesteps, noise, toyV);
      const ve = await runVE(plan, noise);
      for (let k = 0; k < steps; k++) {
        const s = plan.sigmas[k + 1];
        const asVe = vp[k].map((v) => v * Math.sqrt(s * s + 1)); // x_VE = x_VP·√(σ² + 1)
        assertRelClose(ve.trajectory[k], asVe, 1e-9, `step ${k}`);
      }
      assertRelClose(ve.final, vp[steps - 1], 1e-9, 'final');
    });
  }

  for (const steps of [20, 7, 1]) {
    it(`diffuser_ddim (${steps} steps) = Euler in VE form`, async () => {
      const plan = planSampling({ sampler: 'ddim', steps });
      const ve = await runVE(plan, noise);
      // With ā taken from the sigma table (ā = 1/(σ² + 1)) the identity is exact up to rounding …
      const table = discreteSchedule().sigmas;
      const acFromSigma = Float64Array.from(table, (s) => 1 / (s * s + 1));
      const vp = diffusersDdimVP(acFromSigma, steps, noise, toyV);
      for (let k = 0; k < steps; k++) {
        const s = plan.sigmas[k + 1];
        assertRelClose(ve.trajectory[k], vp[k].map((v) => v * Math.sqrt(s * s + 1)), 1e-9, `step ${k}`);
      }
      // … and with diffusers' own float32 ā it differs only by the float32 rounding of the σ table.
      const vpF32 = diffusersDdimVP(discreteSchedule().alphasCumprod, steps, noise, toyV);
      assertRelClose(ve.final, vpF32[steps - 1], 1e-7, 'final vs float32 ā');
    });
  }
});
