/** Settings: defaults, ranges, unknown keys and size fitting, with the field named. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../src/errors.ts';
import { packSchema } from '../src/pack/schema.ts';
import { resolveSettings, uiRefScales } from '../src/settings.ts';

const manifest = packSchema.parse({
  contract: 'colorize-diffusion-v2@1',
  id: 'test',
  version: '1',
  licence: { name: 'MIT', text: 'x', commercialUse: true },
  prediction: 'v',
  latent: { factor: 8, channels: 4, scale: 0.18215 },
  size: { multiple: 64, min: 64, max: 1024, default: 128 },
  graphs: {},
  defaults: { steps: 12 },
});

function fails(input: unknown, code: string, field: string) {
  assert.throws(
    () => resolveSettings(input, manifest),
    (e: unknown) => e instanceof PipelineError && e.code === code && e.field === field,
    `expected ${code} on ${field}`,
  );
}

describe('settings', () => {
  it('fills the contract defaults, with pack defaults in between', () => {
    const s = resolveSettings({}, manifest, () => 0.25);
    assert.equal(s.steps, 12); // pack default beats the UI default 20
    assert.equal(s.sampler, 'diffuser_dpm');
    assert.equal(s.guidanceScale, 4);
    assert.equal(s.sketchGuidanceScale, 1);
    assert.equal(s.maskThresholdSketch, 0.05);
    assert.equal(s.maskThresholdRef, 0.5);
    assert.equal(s.width, 128);
    assert.equal(s.seed, Math.floor(0.25 * 429_496_730)); // −1 resolves to a reported seed
    assert.deepEqual(s.refScales, new Array(16).fill(1));
    assert.equal(resolveSettings({ steps: 30 }, manifest).steps, 30);
  });

  it('names the field of an out-of-range, mistyped or unknown knob', () => {
    fails({ steps: 0 }, 'INVALID_KNOB', 'settings.steps');
    fails({ guidanceScale: 20 }, 'INVALID_KNOB', 'settings.guidanceScale');
    fails({ controlScale: 'strong' }, 'INVALID_KNOB', 'settings.controlScale');
    fails({ refScales: [1, 1] }, 'INVALID_KNOB', 'settings.refScales');
    fails({ sampler: 'plms' }, 'UNKNOWN_SAMPLER', 'settings.sampler');
    fails({ mode: 'sepia' }, 'UNKNOWN_MODE', 'settings.mode');
    fails({ stpes: 20 }, 'INVALID_KNOB', 'settings.stpes');
    fails({ guidanceStart: 0.8, guidanceEnd: 0.2 }, 'INVALID_KNOB', 'settings.guidanceStart');
    fails('fast', 'INVALID_KNOB', 'settings');
  });

  it('fits sizes off the multiple-of-64 rule and says so', () => {
    const s = resolveSettings({ width: 300, height: 5000 }, manifest);
    assert.equal(s.width, 320);
    assert.equal(s.height, 1024);
    assert.equal(s.warnings.length, 2);
    assert.match(s.warnings[0]!, /width 300 .* using 320/);
  });

  it('maps the UI sliders like the app does on a fresh model', () => {
    const scales = uiRefScales({ strength: 0, enc: 1, middle: 1, low: 1 });
    // Layers 6 and 13–15 are never set by the app's sliders: they stay 1.
    assert.deepEqual(scales.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0), [6, 13, 14, 15]);
    const mixed = uiRefScales({ strength: 0.5, enc: 0.2, middle: 0.4, low: 0.8 });
    assert.deepEqual(mixed.slice(0, 6), [0.1, 0.1, 0.2, 0.2, 0.4, 0.4]);
    assert.deepEqual(mixed.slice(7, 13), [0.4, 0.4, 0.4, 0.2, 0.2, 0.2]);
    const explicit = resolveSettings({ refScales: new Array(16).fill(0.3) }, manifest);
    assert.deepEqual(explicit.refScales, new Array(16).fill(0.3));
  });
});
