/**
 * Settings resolved once against a pack: defaults, ranges, unknown keys, the output size (asked,
 * from the frames, fitted or refused), the rules that span fields, and the warnings a user sees.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../src/errors.ts';
import { packSchema } from '../src/pack/schema.ts';
import { resolvedSettingsSchema, resolveSettings, resolveRefScales, settingsSchema, uiRefScales, withFrameSize, type ResolveOptions } from '../src/settings.ts';

const manifest = packSchema.parse({
  contract: 'colorize-diffusion-v2@1',
  id: 'test',
  version: '1',
  licence: { name: 'MIT', text: 'x', commercialUse: true },
  prediction: 'v',
  latent: { factor: 8, channels: 4, scale: 0.18215 },
  size: { multiple: 64, min: 64, max: 1024, default: 128 },
  // Every graph a mode or option may need, so only the rules under test refuse.
  graphs: Object.fromEntries(
    ['clip_image', 'vae_encoder', 'vae_decoder', 'control_encoder', 'unet', 'bg_encoder', 'style_encoder', 'ref_mask', 'lineart_keras'].map((g) => [
      g,
      { file: `${g}.onnx`, sha256: 'a'.repeat(64) },
    ]),
  ),
  defaults: { steps: 12 },
});

const resolve = (input: unknown, options: ResolveOptions = {}) => resolveSettings(input, manifest, options);

function fails(input: unknown, code: string, field: string, options: ResolveOptions = {}, text?: RegExp) {
  assert.throws(
    () => resolve(input, options),
    (e: unknown) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.deepEqual([e.code, e.field], [code, field], e.message);
      if (text) assert.match(e.message, text);
      return true;
    },
  );
}

describe('settings', () => {
  it('fills the contract defaults, with pack defaults in between, into a complete resolved record', () => {
    const { settings: s, warnings } = resolve({}, { random: () => 0.25 });
    assert.equal(s.steps, 12); // pack default beats the UI default 20
    assert.equal(s.sampler, 'diffuser_dpm');
    assert.equal(s.guidanceScale, 4);
    assert.equal(s.sketchGuidanceScale, 1);
    assert.equal(s.maskThresholdSketch, 0.05);
    assert.equal(s.maskThresholdRef, 0.5);
    assert.deepEqual([s.width, s.height, s.sizeFrom], [128, 128, 'pack']);
    assert.equal(s.seed, Math.floor(0.25 * 429_496_730)); // −1 resolves to a reported seed
    assert.deepEqual(s.refScales, new Array(16).fill(1));
    assert.deepEqual(warnings, []);
    // What is stored on the shot parses back as itself: every value explicit, nothing defaulted.
    assert.deepEqual(resolvedSettingsSchema.parse(s), s);
    assert.throws(() => resolvedSettingsSchema.parse({ ...s, steps: undefined }), /steps/);
    assert.equal(resolve({ steps: 30 }).settings.steps, 30);
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

  it('fits an asked size to the multiple with a warning, and refuses one outside the range naming it', () => {
    const fitted = resolve({ width: 250, height: 100 });
    assert.deepEqual([fitted.settings.width, fitted.settings.height, fitted.settings.sizeFrom], [256, 128, 'request']);
    assert.deepEqual(
      fitted.warnings.map((w) => [w.code, w.field]),
      [
        ['SIZE_FITTED', 'settings.width'],
        ['SIZE_FITTED', 'settings.height'],
      ],
    );
    assert.match(fitted.warnings[0]!.message, /width 250 is not a multiple of 64; rendering 256/);
    assert.deepEqual(resolve({ width: 1050, height: 256 }).settings.width, 1024, 'the nearest multiple is in range');
    fails({ width: 5000, height: 256 }, 'INVALID_KNOB', 'settings.width', {}, /5000 .* multiples of 64 within 64–1024/);
    fails({ width: 256, height: 1e12 }, 'INVALID_KNOB', 'settings.height', {}, /1000000000000/);
    fails({ width: 20, height: 256 }, 'INVALID_KNOB', 'settings.width');
    fails({ width: 256 }, 'INVALID_KNOB', 'settings.height', {}, /give height with width, or neither/);
  });

  it("takes the first frame's size when none is asked, fitted to the pack with a warning", () => {
    const exact = resolve({}, { frameSize: { width: 256, height: 256 } });
    assert.deepEqual([exact.settings.width, exact.settings.height, exact.settings.sizeFrom], [256, 256, 'frames']);
    assert.deepEqual(exact.warnings, []);
    const big = resolve({}, { frameSize: { width: 2000, height: 1000 } });
    assert.deepEqual([big.settings.width, big.settings.height], [1024, 512], 'scaled into the range, aspect kept');
    assert.match(big.warnings[0]!.message, /frames are 2000×1000; rendering 1024×512/);
    const odd = resolve({}, { frameSize: { width: 250, height: 90 } });
    assert.deepEqual([odd.settings.width, odd.settings.height], [256, 64]);
    assert.equal(odd.warnings[0]!.code, 'SIZE_FITTED');
    // An asked size wins over the frames'.
    assert.equal(resolve({ width: 512, height: 512 }, { frameSize: { width: 256, height: 256 } }).settings.width, 512);
  });

  it('gives a shot resolved before its frames were known their size, once, later', () => {
    const early = resolve({ mode: 'vanilla', mergeScale: 0.5 });
    assert.equal(early.settings.sizeFrom, 'pack');
    const later = withFrameSize(early, { width: 300, height: 256 }, manifest);
    assert.deepEqual([later.settings.width, later.settings.height, later.settings.sizeFrom], [320, 256, 'frames']);
    assert.deepEqual(later.warnings.map((w) => w.field), ['settings.mergeScale', 'settings.width'], 'the earlier warnings kept');
    assert.equal(withFrameSize(later, { width: 512, height: 512 }, manifest), later, 'once');
    const asked = resolve({ width: 512, height: 512 });
    assert.equal(withFrameSize(asked, { width: 256, height: 256 }, manifest), asked, 'an asked size stays');
  });

  it('refuses removeForeground without a background image, naming the field', () => {
    fails({ mode: 'background', removeForeground: true }, 'INVALID_KNOB', 'settings.removeForeground', {}, /no background image/);
    assert.equal(resolve({ mode: 'background', removeForeground: true }, { background: true }).settings.removeForeground, true);
  });

  it('warns about knobs and inputs these settings never read', () => {
    const vanilla = resolve({ mode: 'vanilla', mergeScale: 0.5, maskScale: 1.5, fgStrength: 0.2, lineExtractor: 'lineart_keras', bgStrength: 1 }, { background: true });
    assert.deepEqual(
      vanilla.warnings.map((w) => [w.code, w.field]),
      [
        ['IGNORED', 'settings.fgStrength'],
        ['IGNORED', 'settings.mergeScale'],
        ['IGNORED', 'settings.maskScale'],
        ['IGNORED', 'background'],
      ],
      'lineExtractor and bgStrength equal their defaults: nothing is lost, nothing said',
    );
    assert.match(vanilla.warnings[0]!.message, /fgStrength 0.2 has no effect: mode vanilla without fgEnhance has no split attention/);
    const overridden = resolve({ refScales: new Array(16).fill(0.5), referenceStrength: 0.3 });
    assert.deepEqual(overridden.warnings.map((w) => w.field), ['settings.referenceStrength']);
    const full = resolve({ mode: 'full', mergeScale: 0.5, maskScale: 1.5, fgStrength: 0.2 }, { background: true });
    assert.deepEqual(full.warnings, [], 'every knob is read in mode full with a background');
  });

  it('maps the UI sliders like the app does on a fresh model', () => {
    const scales = uiRefScales({ strength: 0, enc: 1, middle: 1, low: 1 });
    // Layers 6 and 13–15 are never set by the app's sliders: they stay 1.
    assert.deepEqual(scales.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0), [6, 13, 14, 15]);
    const mixed = uiRefScales({ strength: 0.5, enc: 0.2, middle: 0.4, low: 0.8 });
    assert.deepEqual(mixed.slice(0, 6), [0.1, 0.1, 0.2, 0.2, 0.4, 0.4]);
    assert.deepEqual(mixed.slice(7, 13), [0.4, 0.4, 0.4, 0.2, 0.2, 0.2]);
    const explicit = resolve({ refScales: new Array(16).fill(0.3) });
    assert.deepEqual(explicit.settings.refScales, new Array(16).fill(0.3));
  });

  it('resolves the level sliders to the numbers of the app’s formula (set_cas_scales, then adjust_reference_scale)', () => {
    // {encoder: enc·s → 0–5, middle: middle·s → 2,3,10–12, low: low·s → 4,5,7–9}, applied in that
    // order over a fresh model's 1s; worked out by hand for s 0.5, enc 0.2, middle 0.4, low 0.8.
    const s = resolve({ referenceStrength: 0.5, encScale: 0.2, middleScale: 0.4, lowScale: 0.8 }).settings;
    assert.deepEqual(s.refScales, [0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 1, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 1, 1, 1]);
  });

  it('accurate mode: the 16 sliders set the layers directly, strength and level scales not applied', () => {
    const sliders = Array.from({ length: 16 }, (_, i) => i / 20); // 0, 0.05, …, 0.75
    const levels = { referenceStrength: 0.5, encScale: 0.2, middleScale: 0.4, lowScale: 0.8 };
    // "Activate accurate crossattn control" ticked, sliders at their defaults: 16 × 1.
    const ticked = resolve({ accurate: true, ...levels });
    assert.deepEqual(ticked.settings.refScales, new Array(16).fill(1));
    assert.deepEqual(
      ticked.warnings.map((w) => w.field),
      ['settings.referenceStrength', 'settings.encScale', 'settings.middleScale', 'settings.lowScale'],
    );
    assert.match(ticked.warnings[0]!.message, /accurate mode: refScales sets every layer/);
    // Layer i from slider i. (The app, off by one, gives layer i slider i + 1 and layer 15 nothing.)
    const set = resolve({ accurate: true, refScales: sliders, ...levels }).settings.refScales;
    assert.deepEqual(set, sliders);
    assert.notDeepEqual(set, [...sliders.slice(1), 1], 'the app’s off-by-one is not reproduced');
    assert.deepEqual(resolve({ refScales: sliders }).settings.refScales, sliders, 'refScales alone turns accurate mode on');
    // Unticked: the sliders are ignored (as in the app) and the level mapping applies.
    const unticked = resolve({ accurate: false, refScales: sliders, ...levels });
    assert.deepEqual(unticked.settings.refScales, uiRefScales({ strength: 0.5, enc: 0.2, middle: 0.4, low: 0.8 }));
    assert.deepEqual(unticked.warnings.map((w) => w.field), ['settings.refScales']);
    assert.match(unticked.warnings[0]!.message, /accurate is false/);
    assert.deepEqual(resolveRefScales(settingsSchema.parse({ accurate: false })), new Array(16).fill(1), 'default: unchanged output');
    fails({ accurate: 'yes' }, 'INVALID_KNOB', 'settings.accurate');
    fails({ accurate: true, refScales: [...sliders.slice(1), 1.5] }, 'INVALID_KNOB', 'settings.refScales.15');
  });

  it('accepts the app’s disentangle scale, which v2 never reads, and says so', () => {
    const plain = resolve({ seed: 4 });
    const set = resolve({ seed: 4, disentangleScale: 0.3 });
    assert.deepEqual(set.settings, plain.settings, 'nothing rendered differs');
    assert.deepEqual(set.warnings.map((w) => [w.code, w.field]), [['IGNORED', 'settings.disentangleScale']]);
    assert.match(set.warnings[0]!.message, /disentangleScale 0.3 has no effect: the official v2 app passes it to no computation/);
    assert.deepEqual(resolve({ disentangleScale: 1 }).warnings, [], 'the default says nothing');
    fails({ disentangleScale: 1.5 }, 'INVALID_KNOB', 'settings.disentangleScale');
  });
});
