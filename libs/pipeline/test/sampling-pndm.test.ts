/**
 * `diffuser_pndm` against an independent float64 transcription of diffusers' PNDMScheduler
 * (`scheduling_pndm.py`) as the official app configures it (configs/scheduler_cfgs/pndm.yaml:
 * steps_offset 1, leading spacing; skip_prk_steps and set_alpha_to_one at their defaults, False),
 * call by call and step by step, plus an analytic convergence check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../src/errors.ts';
import {
  denoisedFromModelOutput,
  discreteSchedule,
  gaussianNoise,
  getSigmasKarras,
  modelTimestep,
  planSampling,
  pndm,
  samplers,
  scaleModelInput,
  SIGMA_MAX,
  SIGMA_MIN,
  sigmaToT,
} from '../src/sampling/index.ts';
import type { Denoiser, Prediction } from '../src/sampling/index.ts';

type Vec = number[];
/** A raw model (v or ε) of (VP sample, integer timestep). */
type RawModel = (xVp: Vec, t: number) => Vec;

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

// ---------------------------------------------------------------------------------------------
// The transcription: PNDMScheduler.__init__ / set_timesteps / step / step_prk / step_plms /
// _get_prev_sample, on plain number[] "tensors", with the shared ā table.

interface PndmTrace {
  /** Timesteps of the UNet calls, in order (scheduler.timesteps). */
  timesteps: number[];
  /** The VP sample each UNet call got. */
  inputs: Vec[];
  /** prev_sample after every scheduler.step. */
  samples: Vec[];
}

function diffusersPndm(n: number, noise: Vec, model: RawModel, prediction_type: 'v_prediction' | 'epsilon'): PndmTrace {
  const num_train_timesteps = 1000;
  const alphas_cumprod = Array.from(discreteSchedule().alphasCumprod);
  const final_alpha_cumprod = alphas_cumprod[0]; // set_alpha_to_one = False
  const pndm_order = 4;
  const steps_offset = 1;
  const skip_prk_steps = false;

  // set_timesteps(n), timestep_spacing "leading"
  const step_ratio = Math.floor(num_train_timesteps / n);
  const _timesteps = Array.from({ length: n }, (_, i) => Math.round(i * step_ratio) + steps_offset);
  // prk_timesteps = np.array(_timesteps[-4:]).repeat(2) + np.tile(np.array([0, 1000 // n // 2]), 4)
  const last = _timesteps.slice(-pndm_order);
  const repeated = last.flatMap((t) => [t, t]);
  const tile = Array.from({ length: 2 * pndm_order }, (_, i) => (i % 2 === 0 ? 0 : Math.floor(Math.floor(num_train_timesteps / n) / 2)));
  const prk = repeated.map((t, i) => t + tile[i]);
  // (prk_timesteps[:-1].repeat(2)[1:-1])[::-1]
  const prk_timesteps = prk
    .slice(0, -1)
    .flatMap((t) => [t, t])
    .slice(1, -1)
    .reverse();
  const plms_timesteps = _timesteps.slice(0, -3).reverse();
  const timesteps = [...prk_timesteps, ...plms_timesteps];

  let cur_model_output: Vec | 0 = 0;
  let counter = 0;
  let cur_sample: Vec | null = null;
  let ets: Vec[] = [];

  const _get_prev_sample = (sample: Vec, timestep: number, prev_timestep: number, model_output: Vec): Vec => {
    const alpha_prod_t = alphas_cumprod[timestep];
    const alpha_prod_t_prev = prev_timestep >= 0 ? alphas_cumprod[prev_timestep] : final_alpha_cumprod;
    const beta_prod_t = 1 - alpha_prod_t;
    const beta_prod_t_prev = 1 - alpha_prod_t_prev;
    if (prediction_type === 'v_prediction') {
      model_output = model_output.map((m, j) => alpha_prod_t ** 0.5 * m + beta_prod_t ** 0.5 * sample[j]);
    }
    const sample_coeff = (alpha_prod_t_prev / alpha_prod_t) ** 0.5;
    const model_output_denom_coeff = alpha_prod_t * beta_prod_t_prev ** 0.5 + (alpha_prod_t * beta_prod_t * alpha_prod_t_prev) ** 0.5;
    return sample.map((s, j) => sample_coeff * s - ((alpha_prod_t_prev - alpha_prod_t) * model_output[j]) / model_output_denom_coeff);
  };

  const step_prk = (model_output: Vec, timestep: number, sample: Vec): Vec => {
    const diff_to_prev = counter % 2 ? 0 : Math.floor(Math.floor(num_train_timesteps / n) / 2);
    const prev_timestep = timestep - diff_to_prev;
    timestep = prk_timesteps[Math.floor(counter / 4) * 4];
    const acc = (w: number): Vec => model_output.map((m, j) => (cur_model_output === 0 ? 0 : cur_model_output[j]) + w * m);
    if (counter % 4 === 0) {
      cur_model_output = acc(1 / 6);
      ets.push(model_output);
      cur_sample = sample;
    } else if ((counter - 1) % 4 === 0) {
      cur_model_output = acc(1 / 3);
    } else if ((counter - 2) % 4 === 0) {
      cur_model_output = acc(1 / 3);
    } else if ((counter - 3) % 4 === 0) {
      model_output = acc(1 / 6);
      cur_model_output = 0;
    }
    const cs = cur_sample !== null ? cur_sample : sample;
    const prev_sample = _get_prev_sample(cs, timestep, prev_timestep, model_output);
    counter += 1;
    return prev_sample;
  };

  const step_plms = (model_output: Vec, timestep: number, sample: Vec): Vec => {
    if (!skip_prk_steps && ets.length < 3) throw new Error('PNDM needs 12 PRK iterations first');
    let prev_timestep = timestep - Math.floor(num_train_timesteps / n);
    if (counter !== 1) {
      ets = ets.slice(-3);
      ets.push(model_output);
    } else {
      prev_timestep = timestep;
      timestep = timestep + Math.floor(num_train_timesteps / n);
    }
    const e = ets;
    if (e.length === 1 && counter === 0) {
      cur_sample = sample;
    } else if (e.length === 1 && counter === 1) {
      model_output = model_output.map((m, j) => (m + e[e.length - 1][j]) / 2);
      sample = cur_sample!;
      cur_sample = null;
    } else if (e.length === 2) {
      model_output = e[1].map((v, j) => (3 * v - e[0][j]) / 2);
    } else if (e.length === 3) {
      model_output = e[2].map((v, j) => (23 * v - 16 * e[1][j] + 5 * e[0][j]) / 12);
    } else {
      model_output = e[3].map((v, j) => (1 / 24) * (55 * v - 59 * e[2][j] + 37 * e[1][j] - 9 * e[0][j]));
    }
    const prev_sample = _get_prev_sample(sample, timestep, prev_timestep, model_output);
    counter += 1;
    return prev_sample;
  };

  const step = (model_output: Vec, timestep: number, sample: Vec): Vec =>
    counter < prk_timesteps.length && !skip_prk_steps ? step_prk(model_output, timestep, sample) : step_plms(model_output, timestep, sample);

  // The app's DiffuserDenoiser loop: x = x·init_noise_sigma (1); scale_model_input is the identity.
  let x = noise.slice();
  const trace: PndmTrace = { timesteps, inputs: [], samples: [] };
  for (const t of timesteps) {
    trace.inputs.push(x);
    x = step(model(x, t), t, x);
    trace.samples.push(x);
  }
  return trace;
}

// ---------------------------------------------------------------------------------------------

const N = 40;
/** Nonlinear toy raw models of (VP sample, integer timestep), coupling neighbours. */
const toyV: RawModel = (x, t) => x.map((v, j) => Math.tanh(0.5 * v + 0.001 * t * Math.cos(j)) + 0.1 * x[(j + 3) % x.length] * Math.sin(t / 100));
const toyEps: RawModel = (x, t) => x.map((v, j) => 0.9 * v + 0.2 * Math.sin(0.01 * t + j) * Math.tanh(x[(j + 1) % x.length]));

/** Runs the diffuser_pndm plan with the raw model behind the standard wrapper, recording every call. */
async function runPlan(steps: number, model: RawModel, prediction: Prediction, noise: Vec) {
  const plan = planSampling({ sampler: 'diffuser_pndm', steps });
  const calls: Array<{ t: number; xVp: Float64Array; i: number }> = [];
  const denoise: Denoiser<Float64Array> = (x, sigma, i) => {
    const t = modelTimestep(plan, sigma, i);
    const xVp = scaleModelInput(x, sigma);
    calls.push({ t, xVp, i });
    return denoisedFromModelOutput(x, model(Array.from(xVp), t), sigma, prediction);
  };
  const states: Float64Array[] = [];
  const x0 = Float64Array.from(noise, (e) => e * plan.initNoiseScale);
  const out = await samplers[plan.method](denoise, x0, plan.sigmas, {
    prediction,
    onStep: (i, n, info) => {
      assert.equal(n, steps);
      assert.equal(info.sigma, plan.sigmas[i]);
      assert.equal(info.sigmaNext, plan.sigmas[i + 1]);
      states.push(Float64Array.from(info.x));
    },
  });
  return { plan, calls, states, out };
}

describe('diffuser_pndm = diffusers PNDMScheduler as the app builds it (float64, 1e-12)', () => {
  const noise = Array.from(gaussianNoise(2026, N));
  const cases: Array<[number, Prediction]> = [
    [20, 'v'], // the UI default step count: ratio 50
    [30, 'v'], // odd ratio 33: the first transfer of each block lands one timestep above the next call
    [4, 'v'], // the fewest diffusers can set up: three Runge–Kutta blocks, one multistep step
    [7, 'v'],
    [100, 'v'],
    [20, 'eps'],
    [13, 'eps'],
  ];
  for (const [steps, prediction] of cases) {
    it(`${steps} steps, ${prediction}-prediction: same UNet calls, same state after every step`, async () => {
      const model = prediction === 'v' ? toyV : toyEps;
      const ref = diffusersPndm(steps, noise, model, prediction === 'v' ? 'v_prediction' : 'epsilon');
      const ours = await runPlan(steps, model, prediction, noise);
      // n + 9 calls at diffusers' timesteps, with its samples.
      assert.equal(ours.calls.length, steps + 9);
      assert.deepEqual(ours.calls.map((c) => c.t), ref.timesteps);
      ours.calls.forEach((c, k) => assertRelClose(c.xVp, ref.inputs[k], 1e-12, `input of call ${k} (t = ${c.t})`));
      // Step i = a Runge–Kutta block (4 calls) for i < 3, one multistep call after.
      assert.deepEqual(
        ours.calls.map((c) => c.i),
        [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, ...Array.from({ length: steps - 3 }, (_, k) => k + 3)],
      );
      assert.equal(ours.states.length, steps);
      for (let i = 0; i < steps; i++) {
        const after = i < 3 ? 4 * i + 3 : 12 + (i - 3);
        const sigma = ours.plan.sigmas[i + 1];
        const vp = Array.from(ours.states[i], (v) => v / Math.sqrt(sigma * sigma + 1));
        assertRelClose(vp, ref.samples[after], 1e-12, `state after step ${i}`);
      }
      // What gets decoded: the VP sample at ā_0.
      const decoded = Array.from(ours.out, (v) => v * ours.plan.decodeScale);
      assertRelClose(decoded, ref.samples.at(-1)!, 1e-12, 'decoded latent');
    });
  }
});

describe('diffuser_pndm plan', () => {
  it('20 steps: DDIM timesteps 951 … 1, table sigmas, ending at σ_min (not 0), x_VP = ε', () => {
    const p = planSampling({ sampler: 'diffuser_pndm', steps: 20 });
    const table = discreteSchedule().sigmas;
    assert.equal(p.method, 'pndm');
    assert.equal(p.schedule, 'leading');
    assert.equal(p.timestepMode, 'sigma');
    assert.deepEqual(Array.from(p.timesteps), Array.from({ length: 20 }, (_, k) => 951 - 50 * k));
    for (let k = 0; k < 20; k++) assert.equal(p.sigmas[k], table[p.timesteps[k]]);
    assert.equal(p.sigmas[20], SIGMA_MIN);
    assert.ok(Math.abs(p.sigmas[20] - 0.0291675) < 1e-7);
    assert.equal(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1));
    assert.equal(p.decodeScale, 1 / Math.sqrt(SIGMA_MIN ** 2 + 1));
  });

  it('the scheduler is ignored (diffusers PNDM has no Karras option); labels resolve', () => {
    const base = planSampling({ sampler: 'diffuser_pndm', steps: 9 });
    for (const scheduler of ['karras', 'Karras', 'exponential', 'SGM Uniform']) {
      const p = planSampling({ sampler: 'diffuser_pndm', scheduler, steps: 9 });
      assert.deepEqual(p.sigmas, base.sigmas, scheduler);
      assert.deepEqual(p.timesteps, base.timesteps, scheduler);
    }
  });

  it('every UNet call is at a table σ whose σ→t is its integer timestep', async () => {
    const { calls, plan } = await runPlan(33, toyV, 'v', Array.from(gaussianNoise(3, N)));
    const table = discreteSchedule().sigmas;
    for (const { t } of calls) {
      assert.ok(Number.isInteger(t) && t >= 0 && t <= 999, `t = ${t}`);
      assert.equal(sigmaToT(table[t]), t);
    }
    assert.equal(plan.timesteps[0], calls[0].t);
  });

  it('fewer than 4 steps → INVALID_KNOB settings.steps (the app fails to set them up)', () => {
    for (const steps of [1, 2, 3]) {
      assert.throws(
        () => planSampling({ sampler: 'diffuser_pndm', steps }),
        (e: unknown) => isPipelineError(e) && e.code === 'INVALID_KNOB' && e.field === 'settings.steps' && /at least 4 steps/.test(e.message),
      );
    }
    assert.equal(planSampling({ sampler: 'diffuser_pndm', steps: 4 }).steps, 4);
  });

  it('the sampler refuses sigmas off the σ table, fewer than 4 steps and 0 before the end', async () => {
    const x = Float64Array.from(gaussianNoise(4, N));
    const den: Denoiser = (v) => v;
    await assert.rejects(pndm(den, x, getSigmasKarras(8, SIGMA_MIN, SIGMA_MAX)), /not a value of the σ table/);
    const table = discreteSchedule().sigmas;
    await assert.rejects(pndm(den, x, [table[900], table[600], table[300], 0]), /at least 4 steps/);
    await assert.rejects(pndm(den, x, [table[900], table[600], table[300], table[100], 0, 0]), RangeError);
  });

  // With a fixed D the exact ε is constant along the path, and every PNDM mix of equal ε is that ε.
  it('ends at ā = 1 when the sigmas end in 0 (set_alpha_to_one): a fixed ε-model lands on its image', async () => {
    const image = Float64Array.from({ length: N }, (_, j) => Math.sin(j * 0.7) * 0.9 - 0.1);
    const table = discreteSchedule().sigmas;
    const sigmas = [table[951], table[701], table[451], table[201], 0];
    const x0 = Float64Array.from(gaussianNoise(8, N), (e) => e * Math.sqrt(sigmas[0] ** 2 + 1));
    const out = await pndm(() => image, x0, sigmas, { prediction: 'eps' });
    // ā comes from the float32 table, the VE↔VP scaling from σ: they agree to float32 rounding.
    assertRelClose(out, image, 1e-6, 'fixed denoiser, σ_n = 0');
  });
});

// ---------------------------------------------------------------------------------------------
// Sanity: Gaussian data x₀ ~ N(μ, s²) per element has the exact denoiser
// D(x, σ) = (s²x + σ²μ)/(s² + σ²) and the probability-flow solution
// x(σ) = μ + (x_T − μ)·√((s² + σ²)/(s² + σ_T²)); PNDM must approach it as the steps grow.

const MU = 0.3;
const S = 0.5;
const gaussianData: Denoiser = (x, sigma) => x.map((v) => (S * S * v + sigma * sigma * MU) / (S * S + sigma * sigma));

async function pndmError(steps: number, prediction: Prediction): Promise<number> {
  const plan = planSampling({ sampler: 'diffuser_pndm', steps });
  const x0 = Float64Array.from(gaussianNoise(1, 64), (v) => v * plan.initNoiseScale);
  const out = await pndm(gaussianData, x0, plan.sigmas, { prediction });
  const [s0, sn] = [plan.sigmas[0], plan.sigmas[steps]];
  let err = 0;
  for (let j = 0; j < x0.length; j++) {
    const exact = MU + (x0[j] - MU) * Math.sqrt((S * S + sn * sn) / (S * S + s0 * s0));
    err = Math.max(err, Math.abs(out[j] - exact));
  }
  return err;
}

describe('diffuser_pndm converges to the exact probability-flow solution', () => {
  // Errors at 10 and 40 steps: a first-order method gains ×4, a second-order one ×16.
  it('ε-prediction (PNDM proper): better than second order over this range', async () => {
    const [e10, e20, e40] = [await pndmError(10, 'eps'), await pndmError(20, 'eps'), await pndmError(40, 'eps')];
    assert.ok(e20 < e10 && e40 < e20, `errors ${e10}, ${e20}, ${e40}`);
    assert.ok(e40 * 6 <= e10, `errors ${e10} at 10 steps, ${e40} at 40`);
    assert.ok(e40 < 0.01, `40 steps: ${e40}`);
  });

  // diffusers mixes raw v outputs taken at other timesteps and turns the mix into ε with the current
  // sample and ā: an O(h) error in ε per step, so the app's PNDM on a v-model is first order.
  it("v-prediction (the app's): converges, first order", async () => {
    const [e10, e20, e40] = [await pndmError(10, 'v'), await pndmError(20, 'v'), await pndmError(40, 'v')];
    assert.ok(e20 < e10 && e40 < e20, `errors ${e10}, ${e20}, ${e40}`);
    assert.ok(e40 * 3.5 <= e10, `errors ${e10} at 10 steps, ${e40} at 40`);
    assert.ok(e40 < 0.08, `40 steps: ${e40}`);
  });
});
