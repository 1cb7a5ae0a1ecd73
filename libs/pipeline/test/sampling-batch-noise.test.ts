/**
 * Per-item noise of a batch (`batchNoise`): item k's initial noise and every stochastic-sampler draw
 * depend only on (seed, k), so item k of a batch equals item k rendered alone, whatever the batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  batchNoise,
  gaussianNoise,
  ITEM_STREAM_STRIDE,
  itemStepStream,
  MAX_BATCH_ITEM,
  planSampling,
  SAMPLERS,
  samplers,
  STEP_STREAM_BASE,
} from '../src/sampling/index.ts';
import type { Denoiser, SamplerName } from '../src/sampling/index.ts';

const PER = 48;

describe('batchNoise', () => {
  it('item k: initial noise stream k, draw d stream 1000 + d + k·2^20; item 0 as a single render always drew', () => {
    const noise = batchNoise(7, PER, 3);
    assert.equal(noise.initial.length, 3 * PER);
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(noise.initial.subarray(k * PER, (k + 1) * PER), gaussianNoise(7, PER, k), `initial, item ${k}`);
      for (const d of [0, 1, 39]) {
        assert.equal(itemStepStream(k, d), STEP_STREAM_BASE + d + k * ITEM_STREAM_STRIDE);
        assert.deepEqual(noise.draw(d).subarray(k * PER, (k + 1) * PER), gaussianNoise(7, PER, itemStepStream(k, d)), `draw ${d}, item ${k}`);
      }
    }
    // A single render: streams 0 and 1000 + d, what celfarm has always used for batch size 1.
    const single = batchNoise(7, PER, 1);
    assert.deepEqual(single.initial, gaussianNoise(7, PER, 0));
    assert.deepEqual(single.draw(5), gaussianNoise(7, PER, 1005));
  });

  it('an item is the same in any batch and alone (firstItem)', () => {
    const four = batchNoise(123, PER, 4);
    const alone = batchNoise(123, PER, 1, 2);
    const pair = batchNoise(123, PER, 2, 1);
    assert.deepEqual(alone.initial, four.initial.subarray(2 * PER, 3 * PER));
    assert.deepEqual(pair.initial, four.initial.subarray(PER, 3 * PER));
    for (const d of [0, 7, 60]) {
      assert.deepEqual(alone.draw(d), four.draw(d).subarray(2 * PER, 3 * PER), `draw ${d}`);
      assert.deepEqual(pair.draw(d), four.draw(d).subarray(PER, 3 * PER), `draw ${d}`);
    }
  });

  it('items and draws are independent streams (no two coincide)', () => {
    const streams = new Set<number>();
    for (let k = 0; k <= 8; k++) {
      streams.add(k);
      for (let d = 0; d < 200; d++) streams.add(itemStepStream(k, d));
    }
    assert.equal(streams.size, 9 + 9 * 200);
    assert.equal(itemStepStream(MAX_BATCH_ITEM, ITEM_STREAM_STRIDE - STEP_STREAM_BASE - 1) < 2 ** 32, true);
  });

  it('refuses an item outside 0..999, a bad draw index or count', () => {
    assert.throws(() => batchNoise(1, PER, 1, 1000), RangeError);
    assert.throws(() => batchNoise(1, PER, 3, 998), RangeError);
    assert.equal(batchNoise(1, PER, 2, 998).initial.length, 2 * PER);
    assert.throws(() => batchNoise(1, PER, 0), RangeError);
    assert.throws(() => batchNoise(1, PER, 1, -1), RangeError);
    assert.throws(() => batchNoise(1, PER, 1).draw(-1), RangeError);
    assert.throws(() => batchNoise(1, PER, 1).draw(1.5), RangeError);
    assert.throws(() => itemStepStream(0, ITEM_STREAM_STRIDE - STEP_STREAM_BASE), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------

/** A nonlinear toy denoiser acting on each item of PER values on its own (like the batched UNet). */
const perItem: Denoiser<Float32Array> = (x, sigma) => {
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += PER) {
    for (let j = 0; j < PER; j++) {
      const v = x[base + j];
      const right = x[base + ((j + 1) % PER)];
      out[base + j] = Math.tanh((0.8 * v) / Math.sqrt(sigma * sigma + 1) + 0.3 * Math.sin(j)) * (1 + 0.2 * Math.cos(sigma)) + (0.05 * right) / (1 + sigma);
    }
  }
  return out;
};

/** Every sampler but DPM adaptive, whose step-size control looks at the whole batch (as in k-diffusion). */
const INDEPENDENT = SAMPLERS.filter((s) => s !== 'dpm_adaptive');

async function render(sampler: SamplerName, seed: number, count: number, firstItem: number): Promise<Float32Array> {
  const plan = planSampling({ sampler, steps: 9 });
  const noise = batchNoise(seed, PER, count, firstItem);
  const x = Float32Array.from(noise.initial, (e) => e * plan.initNoiseScale);
  return samplers[plan.method](perItem, x, plan.sigmas, { noise: noise.draw });
}

describe('samplers: item k of a batch equals item k rendered alone', () => {
  for (const sampler of INDEPENDENT) {
    it(`${sampler}: a batch of 3, item 2 bit-identical to item 2 alone; items differ`, async () => {
      const batch = await render(sampler, 42, 3, 0);
      const alone = await render(sampler, 42, 1, 2);
      assert.deepEqual(batch.subarray(2 * PER), alone);
      const first = await render(sampler, 42, 1, 0);
      assert.deepEqual(batch.subarray(0, PER), first, 'item 0 = the single render');
      assert.notDeepEqual(batch.subarray(PER, 2 * PER), alone, 'item 1 has its own noise');
    });
  }

  it('the stochastic ones draw per-step noise, so this covers their draws', async () => {
    for (const sampler of ['euler_ancestral', 'dpmpp_sde', 'dpmpp_2m_sde', 'dpmpp_3m_sde'] as const) {
      const plan = planSampling({ sampler, steps: 9 });
      let draws = 0;
      const noise = batchNoise(42, PER, 3);
      const x = Float32Array.from(noise.initial, (e) => e * plan.initNoiseScale);
      await samplers[plan.method](perItem, x, plan.sigmas, { noise: (k) => (draws++, noise.draw(k)) });
      assert.ok(draws >= 8, `${sampler}: ${draws} draws`);
    }
  });
});
