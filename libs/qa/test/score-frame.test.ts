/**
 * The frame scores on constructed frames with known answers: identical frames, a known Lab shift,
 * a hue-shifted palette, a moving shape, lines kept or painted over.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Planar } from '@celfarm/pipeline';
import { deltaE00 } from '../src/ciede2000.ts';
import { analyzeFrame, DEFAULT_THRESHOLDS, referencePalette, scoreFrame, type FrameImages } from '../src/score-frame.ts';
import { lab8, labPicture, maskPicture, rotateHue, sketchPicture, squareInside, squareOutline, type Lab } from './fixtures.ts';

const S = 256;
const SIZE = 48;
const BG = lab8(225, 235, 245);
const FILL = lab8(230, 150, 90);
const INK = lab8(20, 20, 25);
const blank = sketchPicture(S, S, () => false);

const INK_WIDTH = 4;

/**
 * A frame with a square outline at (x0, 64), 4 px wide: ink on the outline, FILL inside, BG
 * elsewhere. With x0 a multiple of 4 every 4×4 cell of the default grid is of one colour.
 */
function squareFrame(x0: number, fill: Lab = FILL, opts: { painted?: boolean; light?: boolean } = {}): FrameImages {
  const line = squareOutline(x0, 64, SIZE, INK_WIDTH);
  const inside = squareInside(x0, 64, SIZE, INK_WIDTH);
  return {
    sketch: sketchPicture(S, S, line, opts.light),
    output: labPicture(S, S, (x, y) => (line(x, y) ? (opts.painted ? fill : INK) : inside(x, y) ? fill : BG)),
  };
}

const flat = (lab: Lab, size = 64): Planar => labPicture(size, size, () => lab);
const within = (actual: number | null, expected: number, tol: number, what: string): void => {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);
};

describe('scoreFrame', () => {
  it('gives identical frames 0 flicker, a faithful palette 0 distance and full line fidelity: no flag', () => {
    const frame = squareFrame(96);
    const reference = referencePalette(frame.output);
    const r = scoreFrame({ frame, previous: squareFrame(96), reference });
    assert.equal(r.scores.flickerMean.value, 0);
    assert.equal(r.scores.flickerShare.value, 0);
    assert.equal(r.flickerMeasuredShare, 1);
    within(r.scores.palette.value, 0, 1e-6, 'palette distance');
    assert.equal(r.scores.lineFidelity.value, 1);
    assert.deepEqual(r.flagged, []);
    assert.equal(r.polarity, 'dark-lines');
  });

  it('measures a known Lab shift as its ΔE00: Sharma pair 16, (50, 2.5, 0) → (50, 0, −2.5), ΔE00 4.3065', () => {
    const r = scoreFrame({
      frame: { output: flat([50, 0, -2.5]), sketch: flat([100, 0, 0]) },
      previous: { output: flat([50, 2.5, 0]), sketch: flat([100, 0, 0]) },
      reference: referencePalette(flat([50, 2.5, 0])),
    });
    within(r.scores.flickerMean.value, 4.3065, 1e-3, 'mean ΔE00');
    assert.equal(r.scores.flickerShare.value, 1, 'every pixel changed by more than the JND 2.3');
    // The same pair as palettes: the output's only colour is 4.3065 from the reference's only colour.
    within(r.scores.palette.value, 4.3065, 1e-3, 'palette distance');
    assert.equal(r.scores.lineFidelity.value, null, 'no lines in a blank sketch');
    assert.deepEqual(r.flagged, ['flickerMean', 'flickerShare']);
  });

  it('gives a uniformly hue-shifted output the share-weighted ΔE00 of each colour to its nearest reference colour', () => {
    const HAIR: Lab = [45, 10, -40];
    const SKIN: Lab = [80, 12, 18];
    const picture = (hair: Lab, skin: Lab) => labPicture(128, 128, (x) => (x < 96 ? skin : hair)); // 75% skin, 25% hair
    const reference = referencePalette(picture(HAIR, SKIN));
    const shift = 40;
    const output = picture(rotateHue(HAIR, shift), rotateHue(SKIN, shift));
    const r = scoreFrame({ frame: { output, sketch: sketchPicture(128, 128, () => false) }, reference });
    const nearest = (c: Lab) => Math.min(deltaE00(...c, ...HAIR), deltaE00(...c, ...SKIN));
    const byHand = 0.75 * nearest(rotateHue(SKIN, shift)) + 0.25 * nearest(rotateHue(HAIR, shift));
    assert.ok(byHand > 5, `the shift is visible (${byHand})`);
    within(r.scores.palette.value, byHand, 2e-3, 'palette distance');
    assert.deepEqual(
      r.outputPalette.map((e) => e.share),
      [0.75, 0.25],
    );
  });

  it('leaves out of flicker what a moving shape swept over, and its moved lines', () => {
    // The square moves 64 px right; the output follows it exactly. Where it was and where it now is
    // change colour, but the sketches say so: nothing else changed, so the flicker is 0.
    const r = scoreFrame({ frame: squareFrame(96), previous: squareFrame(32), reference: referencePalette(flat(BG)) });
    assert.equal(r.scores.flickerMean.value, 0);
    assert.equal(r.scores.flickerShare.value, 0);
    const share = r.flickerMeasuredShare ?? 0;
    assert.ok(share > 0.8 && share < 0.95, `measured share ${share}`);

    // The same colour change under a sketch that did not move is flicker, and is measured.
    const still = squareFrame(96);
    const ghost = { output: squareFrame(32).output, sketch: still.sketch };
    const g = scoreFrame({ frame: still, previous: ghost, reference: referencePalette(flat(BG)) });
    assert.equal(g.flickerMeasuredShare, 1);
    assert.ok((g.scores.flickerShare.value ?? 0) > 0.05, `share over JND ${g.scores.flickerShare.value}`);
    assert.ok((g.scores.flickerMean.value ?? 0) > 1, `mean ${g.scores.flickerMean.value}`);
  });

  it('counts a colour change inside an unchanged region at its area', () => {
    const OTHER = rotateHue(FILL, 90);
    const r = scoreFrame({ frame: squareFrame(96, OTHER), previous: squareFrame(96), reference: referencePalette(flat(BG)) });
    // Interior 40×40 px = 10×10 cells of 64×64, all changed by ΔE00(FILL, OTHER); the outline cells
    // are ink in both frames.
    const cells = (10 * 10) / (64 * 64);
    within(r.scores.flickerShare.value, cells, 1e-12, 'share over JND');
    within(r.scores.flickerMean.value, cells * deltaE00(...FILL, ...OTHER), 1e-3, 'mean ΔE00');
  });

  it('gives line fidelity 1 when the lines stay dark and 0 when they are painted over, for either sketch polarity', () => {
    const reference = referencePalette(flat(FILL));
    for (const light of [false, true]) {
      const kept = scoreFrame({ frame: squareFrame(96, FILL, { light }), reference });
      assert.equal(kept.polarity, light ? 'light-lines' : 'dark-lines');
      assert.equal(kept.linePixels, SIZE * SIZE - (SIZE - 2 * INK_WIDTH) ** 2);
      assert.equal(kept.scores.lineFidelity.value, 1);
      const painted = scoreFrame({ frame: squareFrame(96, FILL, { light, painted: true }), reference });
      assert.equal(painted.scores.lineFidelity.value, 0);
      assert.ok(painted.flagged.includes('lineFidelity'));
    }
  });

  it('does not count a line painted over with a dark fill as kept, but counts ink on that fill', () => {
    const NAVY: Lab = [25, 10, -30]; // darker than the L* 50 limit on its own
    const reference = referencePalette(flat(NAVY));
    const inked = scoreFrame({ frame: squareFrame(96, NAVY), reference });
    assert.equal(inked.scores.lineFidelity.value, 1);
    const painted = scoreFrame({ frame: squareFrame(96, NAVY, { painted: true }), reference });
    // Navy is dark enough for the L* 50 limit, but not darker than the navy fill next to it.
    assert.equal(painted.scores.lineFidelity.value, 0);
  });

  it('takes the output palette inside the character mask, at any mask size', () => {
    const frame = squareFrame(96);
    // The sketch mask at latent size (1/8): the square, 6×6 cells at (12, 8).
    const mask = maskPicture(S / 8, S / 8, (x, y) => x >= 12 && x < 18 && y >= 8 && y < 14);
    const reference = referencePalette(flat(FILL));
    const masked = scoreFrame({ frame: { ...frame, characterMask: mask }, reference });
    const whole = scoreFrame({ frame, reference });
    assert.ok(masked.outputPalette.every((e) => deltaE00(e.L, e.a, e.b, ...BG) > 5), 'no background inside the mask');
    assert.ok((masked.scores.palette.value ?? Infinity) < (whole.scores.palette.value ?? 0), 'the background off the reference only counts without a mask');
  });

  it('has no flicker value for the first frame, and takes per-project thresholds', () => {
    const frame = squareFrame(96, FILL, { painted: true });
    const reference = referencePalette(flat(FILL));
    const first = scoreFrame({ frame, reference });
    assert.equal(first.scores.flickerMean.value, null);
    assert.equal(first.scores.flickerMean.flagged, false);
    assert.equal(first.flickerMeasuredShare, null);
    assert.equal(first.scores.palette.threshold, DEFAULT_THRESHOLDS.palette);
    assert.deepEqual(first.flagged, ['palette', 'lineFidelity']);
    const lenient = scoreFrame({ frame, reference }, { thresholds: { palette: 1000, lineFidelity: 0 } });
    assert.deepEqual(lenient.flagged, []);
    assert.equal(lenient.scores.palette.threshold, 1000);
    assert.equal(lenient.scores.flickerMean.threshold, DEFAULT_THRESHOLDS.flickerMean);
  });

  it('scores the same from kept analyses as from images', () => {
    const a = squareFrame(32);
    const b = squareFrame(40, rotateHue(FILL, 20));
    const reference = referencePalette(flat(FILL));
    const fromImages = scoreFrame({ frame: b, previous: a, reference });
    const fromAnalyses = scoreFrame({ frame: analyzeFrame(b), previous: analyzeFrame(a), reference });
    assert.deepEqual(fromAnalyses, fromImages);
    assert.ok((fromImages.flickerMeasuredShare ?? 0) > 0.5);
  });

  it('refuses a sketch that is not at the output size, and frames of different sizes', () => {
    const reference = referencePalette(flat(FILL));
    assert.throws(() => scoreFrame({ frame: { output: flat(FILL, 64), sketch: blank }, reference }), RangeError);
    assert.throws(
      () => scoreFrame({ frame: { output: flat(FILL, 64), sketch: flat([100, 0, 0], 64) }, previous: squareFrame(0), reference }),
      RangeError,
    );
  });
});
