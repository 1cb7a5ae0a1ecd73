/**
 * End-to-end colorize() on the analytic pack, asserting the documented closed form
 * (tools/model-kit/README.md): what a user sees — foreground and background colours, lines,
 * determinism — not which functions ran.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyticAttention } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame, uniformImage } from '@celfarm/model-kit/samples';
import { colorize, colorizeFrame } from '../src/colorize.ts';
import { crop, encodePng } from '../src/image/index.ts';
import type { Planar } from '../src/image/tensor.ts';
import type { Tensor } from '../src/ort/runtime.ts';
import { deserializeReferenceContext, prepareReference, serializeReferenceContext } from '../src/reference.ts';
import { assertClose, loadPack, rgbAt, settingsFor } from './fixtures.ts';

const SIZE = 128;

const attend = analyticAttention;
const mostChromatic = (t: Tensor) => attend(t, 3, 1);
const darkest = (t: Tensor) => attend(t, 4, -1);

const reference = () => halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey);
const frame = () => sketchFrame(SIZE, SIZE);
const inside = (c: { cx: number; cy: number }) => [c.cx, c.cy] as const;
const outside = [10, 10] as const;

/** Expected image for one colour everywhere: per 8×8 cell ink from the sketch, lines black. */
function expectedUniform(sketch: Planar, colour: number[]): Planar {
  const { width: W, height: H } = sketch;
  const out: Planar = { data: new Float32Array(3 * W * H), channels: 3, height: H, width: W };
  for (let cy = 0; cy < H / 8; cy++) {
    for (let cx = 0; cx < W / 8; cx++) {
      let sum = 0;
      for (let y = cy * 8; y < cy * 8 + 8; y++) {
        for (let x = cx * 8; x < cx * 8 + 8; x++) {
          for (let c = 0; c < 3; c++) sum -= sketch.data[(c * H + y) * W + x]!; // invert preprocessor
        }
      }
      const ink = Math.min(1, Math.max(0, sum / 192 + 1));
      for (let y = cy * 8; y < cy * 8 + 8; y++) {
        for (let x = cx * 8; x < cx * 8 + 8; x++) {
          for (let c = 0; c < 3; c++) {
            out.data[(c * H + y) * W + x] = Math.min(1, Math.max(-1, (1 - ink) * colour[c]! - ink));
          }
        }
      }
    }
  }
  return out;
}

function maxAbsDiff(a: Planar, b: Planar): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

describe('colorize on the analytic pack', () => {
  for (const sampler of ['diffuser_dpm', 'dpmpp_2m', 'euler', 'euler_ancestral', 'ddim'] as const) {
    it(`${sampler} ends on the known image (vanilla, no guidance)`, async () => {
      const pack = await loadPack();
      const s = settingsFor(pack, { sampler, steps: 12, guidanceScale: 1, seed: 3, width: SIZE, height: SIZE });
      const { image: sketch } = frame();
      const r = await colorize(pack, s, { sketch, reference: reference() });
      const fg = mostChromatic(r.context.emb);
      assertClose(fg, COLOURS.red, 0.05, 'reference colour read by the analytic attention');
      const diff = maxAbsDiff(r.images[0]!, expectedUniform(sketch, fg));
      assert.ok(diff < 2e-3, `max |output − expected| = ${diff}`);
    });
  }

  it('eps-prediction packs land on the same image', async () => {
    const pack = await loadPack({ prediction: 'eps' });
    const s = settingsFor(pack, { steps: 10, guidanceScale: 1, seed: 3, width: SIZE, height: SIZE });
    const { image: sketch } = frame();
    const r = await colorize(pack, s, { sketch, reference: reference() });
    const diff = maxAbsDiff(r.images[0]!, expectedUniform(sketch, mostChromatic(r.context.emb)));
    assert.ok(diff < 2e-3, `max |output − expected| = ${diff}`);
  });

  it('vanilla paints the background with the reference colour too; background mode does not', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const base = { steps: 8, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE };
    const vanilla = await colorize(pack, settingsFor(pack, { ...base, mode: 'vanilla' }), { sketch, reference: reference() });
    const bg = await colorize(pack, settingsFor(pack, { ...base, mode: 'background' }), { sketch, reference: reference() });
    const red = mostChromatic(vanilla.context.emb);
    assertClose(rgbAt(vanilla.images[0]!, ...outside), red, 2e-3, 'vanilla background pixel');
    assertClose(rgbAt(bg.images[0]!, ...inside(circle)), red, 2e-3, 'background-mode foreground pixel');
    // The background source is the white-out reference: its darkest colour is the grey backdrop.
    const warp = darkest(bg.context.hsBg![11]!);
    assertClose(warp, COLOURS.grey, 0.02, 'white-out reference background colour');
    assertClose(rgbAt(bg.images[0]!, ...outside), warp, 2e-3, 'background-mode background pixel');
  });

  it('background replacement takes the second image’s colour; merge_scale interpolates', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const background = () => uniformImage(SIZE, SIZE, COLOURS.blue);
    const base = { mode: 'background', steps: 8, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE } as const;
    const r0 = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference(), background: background() });
    assertClose(rgbAt(r0.images[0]!, ...outside), COLOURS.blue, 2e-3, 'replaced background');
    const red = mostChromatic(r0.context.emb);
    assertClose(rgbAt(r0.images[0]!, ...inside(circle)), red, 2e-3, 'foreground keeps the reference colour');
    const r1 = await colorize(pack, settingsFor(pack, { ...base, mergeScale: 0.25 }), { sketch, reference: reference(), background: background() });
    const mixed = red.map((v, c) => 0.75 * v + 0.25 * COLOURS.blue[c]!);
    assertClose(rgbAt(r1.images[0]!, ...inside(circle)), mixed, 2e-3, 'merge 0.25 foreground');
  });

  it('full mode adds the style pull towards the reference mean', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const r = await colorize(pack, settingsFor(pack, { mode: 'full', steps: 8, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE }), {
      sketch,
      reference: reference(),
    });
    const style = r.context.style![11]!.data;
    const styled = (c: number[]) => c.map((v, i) => v + (v * style[i]! + style[4 + i]!));
    assertClose(rgbAt(r.images[0]!, ...inside(circle)), styled(mostChromatic(r.context.emb)), 2e-3, 'full fg');
    assertClose(rgbAt(r.images[0]!, ...outside), styled(darkest(r.context.hsBg![11]!)), 2e-3, 'full bg');
    // The reference mean is half red, half grey: the style shift carries it.
    assertClose([style[4]!, style[5]!, style[6]!], [0.5 * 0.6, 0.5 * -0.4, 0.5 * -0.4], 0.02, 'style shift');
  });

  it('classifier-free guidance lands on U + g·(C − U), single and dual', async () => {
    const pack = await loadPack();
    const { image: sketch } = frame();
    const soft = () => halfImage(SIZE, SIZE, [0.3, -0.2, 0.1], COLOURS.grey);
    const base = { steps: 8, seed: 2, width: SIZE, height: SIZE };
    const single = await colorize(pack, settingsFor(pack, { ...base, guidanceScale: 2.5 }), { sketch, reference: soft() });
    const c = mostChromatic(single.context.emb);
    // U_ref sees zero context: colour 0. Lines stay black because both branches draw them.
    const g = 2.5;
    assert.ok(maxAbsDiff(single.images[0]!, expectedUniform(sketch, c.map((v) => g * v))) < 2e-3, 'single guidance');

    const dual = await colorize(pack, settingsFor(pack, { ...base, guidanceScale: 2.5, sketchGuidanceScale: 2 }), {
      sketch,
      reference: soft(),
    });
    // U_sk has the blank sketch (no ink): ½[(g_r·C) + (U_sk + g_s(C − U_sk))] per cell.
    const { width: W, height: H } = sketch;
    const expected = expectedUniform(sketch, c.map((v) => g * v));
    const noInk = (ch: number) => c[ch]!;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let ch = 0; ch < 3; ch++) {
          const i = (ch * H + y) * W + x;
          // Recover ink from the single-guidance image: v = (1−ink)·g·c − ink.
          const ink = (g * c[ch]! - single.images[0]!.data[i]!) / (g * c[ch]! + 1);
          const C = (1 - ink) * c[ch]! - ink;
          const Uref = -ink;
          const Usk = noInk(ch);
          expected.data[i] = Math.min(1, Math.max(-1, 0.5 * (Uref + g * (C - Uref) + (Usk + 2 * (C - Usk)))));
        }
      }
    }
    const diff = maxAbsDiff(dual.images[0]!, expected);
    assert.ok(diff < 5e-3, `dual guidance max diff ${diff}`);
  });

  it('guidance end < 1 drops the reference for late steps, also with split attention', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    for (const mode of ['vanilla', 'background'] as const) {
      const s = settingsFor(pack, { mode, steps: 8, guidanceScale: 1, guidanceEnd: 0.5, seed: 1, width: SIZE, height: SIZE });
      const r = await colorize(pack, s, { sketch, reference: reference() });
      // The last steps see one zero token: the foreground colour is 0 (mid grey), not red.
      assertClose(rgbAt(r.images[0]!, ...inside(circle)), [0, 0, 0], 2e-3, `${mode} foreground without reference`);
    }
  });

  it('the same seed gives a byte-identical PNG; crop returns the sketch box', async () => {
    const pack = await loadPack();
    const s = settingsFor(pack, { sampler: 'euler_ancestral', steps: 6, seed: 11, width: SIZE, height: SIZE, mode: 'full' });
    const a = await colorize(pack, s, { sketch: frame().image, reference: reference() });
    const b = await colorize(pack, s, { sketch: frame().image, reference: reference() });
    assert.deepEqual(await encodePng(a.images[0]!), await encodePng(b.images[0]!));
    const wide = sketchFrame(200, 100).image;
    const cropped = await colorize(pack, settingsFor(pack, { steps: 4, seed: 1, width: SIZE, height: SIZE, crop: true }), {
      sketch: wide,
      reference: reference(),
    });
    assert.deepEqual([cropped.images[0]!.width, cropped.images[0]!.height], [128, 64]);
    assert.deepEqual(cropped.box, { left: 0, top: 32, width: 128, height: 64 });
  });

  it('a serialised reference context gives the same frame as building it in place', async () => {
    const pack = await loadPack();
    const input = { mode: 'full', steps: 6, seed: 5, width: SIZE, height: SIZE, sketchGuidanceScale: 1.5 } as const;
    const s = settingsFor(pack, input);
    const ctx = await prepareReference(pack, s, { reference: reference() });
    const bytes = serializeReferenceContext(ctx);
    assert.deepEqual(serializeReferenceContext(deserializeReferenceContext(bytes, pack.ref)), bytes);
    const direct = await colorizeFrame(pack, s, ctx, frame().image);
    const loaded = await colorizeFrame(pack, s, deserializeReferenceContext(bytes, pack.ref), frame().image);
    assert.deepEqual(await encodePng(loaded.images[0]!), await encodePng(direct.images[0]!));
    // The key follows the knobs that shape the context, and only those.
    const again = await prepareReference(pack, settingsFor(pack, { ...input, steps: 30 }), { reference: reference() });
    assert.equal(again.key, ctx.key);
    const merged = await prepareReference(pack, settingsFor(pack, { mode: 'full', width: SIZE, height: SIZE, mergeScale: 0.5 }), {
      reference: reference(),
    });
    assert.notEqual(merged.key, ctx.key);
  });

  it('without a sketch_mask graph the flood-fill fallback separates foreground and background', async () => {
    const pack = await loadPack({ omit: ['sketch_mask'] });
    const { image: sketch, circle } = frame();
    const r = await colorize(pack, settingsFor(pack, { mode: 'background', steps: 6, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE }), {
      sketch,
      reference: reference(),
      background: uniformImage(SIZE, SIZE, COLOURS.blue),
    });
    assertClose(rgbAt(r.images[0]!, ...inside(circle)), mostChromatic(r.context.emb), 2e-3, 'fallback foreground');
    assertClose(rgbAt(r.images[0]!, ...outside), COLOURS.blue, 2e-3, 'fallback background');
  });
});

describe('colorize options', () => {
  it('extract runs the pack’s line extractor on a colour drawing', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const base = { steps: 6, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE } as const;
    const extracted = await colorize(pack, settingsFor(pack, { ...base, preprocessor: 'extract' }), { sketch, reference: reference() });
    const inverted = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference() });
    // The analytic extractor turns dark strokes into lines: the ring stays black, the fill red.
    const ring = [circle.cx + circle.r, circle.cy] as const;
    assert.ok(rgbAt(extracted.images[0]!, ...ring, 0)[0]! < -0.5, 'extracted line is dark');
    assertClose(rgbAt(extracted.images[0]!, ...inside(circle)), rgbAt(inverted.images[0]!, ...inside(circle)), 1e-3, 'fill');
  });

  it('remove background whitens what the reference-mask graph calls background', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const r = await colorize(
      pack,
      settingsFor(pack, { mode: 'background', steps: 6, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE, removeBackground: true }),
      { sketch, reference: reference() },
    );
    assertClose(rgbAt(r.images[0]!, ...outside), COLOURS.white, 1e-6, 'grey background became white');
    assertClose(rgbAt(r.images[0]!, ...inside(circle)), mostChromatic(r.context.emb), 2e-3, 'red foreground kept');
  });

  it('remove background runs on the full frame, then the crop (as the app does)', async () => {
    const pack = await loadPack();
    const sketch = sketchFrame(SIZE, SIZE / 2).image; // letterboxed: paper bands above and below
    // A low threshold keeps the mask's soft edge, where the mask of a cropped frame differs.
    const base = { mode: 'background', steps: 4, guidanceScale: 1, seed: 3, width: SIZE, height: SIZE, removeBackground: true, maskThresholdRef: 0.02 } as const;
    const cropped = await colorize(pack, settingsFor(pack, { ...base, crop: true }), { sketch, reference: reference() });
    const full = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference() });
    const expected = crop(full.images[0]!, full.box);
    assert.deepEqual([cropped.images[0]!.height, cropped.images[0]!.width], [SIZE / 2, SIZE]);
    assert.equal(maxAbsDiff(cropped.images[0]!, expected), 0);
  });

  it('invert-webui turns a drawing into bright lines on black before colorizing', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const r = await colorize(pack, settingsFor(pack, { preprocessor: 'invert-webui', steps: 4, guidanceScale: 1, seed: 2, width: SIZE, height: SIZE }), {
      sketch,
      reference: reference(),
    });
    const plain = await colorize(pack, settingsFor(pack, { steps: 4, guidanceScale: 1, seed: 2, width: SIZE, height: SIZE }), { sketch, reference: reference() });
    // Lines at level 127 (not 255) ink less than the inverted drawing's full-strength lines.
    const ring = [Math.round(circle.cx + circle.r), Math.round(circle.cy)] as const;
    assert.ok(rgbAt(r.images[0]!, ...ring)[0]! > rgbAt(plain.images[0]!, ...ring)[0]!, 'weaker lines than invert');
    assertClose(rgbAt(r.images[0]!, ...outside), rgbAt(plain.images[0]!, ...outside), 1e-3, 'paper colours as with invert');
  });

  it('FG enhance splits attention without warp injection', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const r = await colorize(
      pack,
      settingsFor(pack, { fgEnhance: true, steps: 6, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE, bgStrength: 0.5 }),
      { sketch, reference: reference() },
    );
    assert.equal(r.context.hsBg, null);
    // context_bg is the reference itself: background pixels take its darkest colour × bg strength.
    assertClose(rgbAt(r.images[0]!, ...outside), darkest(r.context.emb).map((v) => 0.5 * v), 2e-3, 'fg-enhance background');
    assertClose(rgbAt(r.images[0]!, ...inside(circle)), mostChromatic(r.context.emb), 2e-3, 'fg-enhance foreground');
  });

  it('accurate mode sets every layer from the sliders and leaves reference strength out, as the app does', async () => {
    const pack = await loadPack();
    const { image: sketch, circle } = frame();
    const base = { steps: 6, guidanceScale: 1, seed: 1, width: SIZE, height: SIZE, referenceStrength: 0 };
    const run = (knobs: Record<string, unknown>) => colorize(pack, settingsFor(pack, { ...base, ...knobs }), { sketch, reference: reference() });
    // The analytic UNet scales the reference colour by the mean of ref_scales.
    const level = await run({});
    const red = mostChromatic(level.context.emb);
    // Strength 0 on the app's level mapping: 12 layers 0, layers 6 and 13–15 at 1 → mean 4/16.
    assertClose(rgbAt(level.images[0]!, ...inside(circle)), red.map((v) => v / 4), 2e-3, 'strength 0, level mapping');
    // Accurate mode at the sliders' defaults (16 × 1): the strength is not applied at all.
    const sliders = await run({ accurate: true });
    assertClose(rgbAt(sliders.images[0]!, ...inside(circle)), red, 2e-3, 'accurate, default sliders');
    // Layer i from slider i: half the layers at 0.5, the rest 0 → mean 0.25.
    const half = await run({ accurate: true, refScales: [...new Array<number>(8).fill(0.5), ...new Array<number>(8).fill(0)] });
    assertClose(rgbAt(half.images[0]!, ...inside(circle)), red.map((v) => v / 4), 2e-3, 'accurate, sliders mean 0.25');
  });

  it('refuses a missing reference and a context of another size', async () => {
    const pack = await loadPack();
    const s = settingsFor(pack, { steps: 4, width: SIZE, height: SIZE });
    await assert.rejects(colorize(pack, s, { sketch: frame().image }), /reference: a colour reference image is required/);
    const ctx = await prepareReference(pack, s, { reference: reference() });
    const other = settingsFor(pack, { steps: 4, width: 256, height: 256 });
    await assert.rejects(colorizeFrame(pack, other, ctx, frame().image), /context is 128×128, settings ask 256×256/);
  });
});
