import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deltaE00 } from '../src/ciede2000.ts';
import { planarToLab } from '../src/lab.ts';
import { extractPalette } from '../src/palette.ts';
import { framePalette, lockPalette } from '../src/palette-lock.ts';
import { lineMap } from '../src/raster.ts';
import { lab8, labPicture, rotateHue, sketchPicture, squareInside, squareOutline, type Lab } from './fixtures.ts';

const W = 48;
const H = 48;
const skin = lab8(240, 200, 170);
const shirt = lab8(40, 90, 200);
const labAt = (img: ReturnType<typeof labPicture>, x: number, y: number): Lab => {
  const lab = planarToLab(img);
  const i = y * img.width + x;
  return [lab.L[i]!, lab.a[i]!, lab.b[i]!];
};
const dE = (p: Lab, q: Lab) => deltaE00(...p, ...q);

describe('palette lock', () => {
  // The reference: skin and shirt, flat.
  const reference = labPicture(W, H, (x) => (x < W / 2 ? skin : shirt));
  const target = extractPalette(planarToLab(reference), null);
  // A square drawn in black on white; the output drifted: skin 8° off in hue, a shaded shirt
  // (L* ramps across it) 10° off, the lines black.
  const outline = squareOutline(4, 4, 40, 2);
  const sketch = sketchPicture(W, H, outline);
  const lines = lineMap(sketch, 'dark-lines', 0.5);
  const drift = (c: Lab, deg: number, shade = 0): Lab => {
    const r = rotateHue(c, deg);
    return [r[0] + shade, r[1], r[2]];
  };
  const shade = (x: number) => ((x - W / 2) / (W / 2)) * 4;
  const output = labPicture(W, H, (x, y) =>
    outline(x, y) ? [5, 0, 0] : x < W / 2 ? drift(skin, 8) : drift(shirt, 10, squareInside(4, 4, 40, 2)(x, y) ? shade(x) : 0),
  );

  it('moves drifted flat colours onto the reference palette and keeps the lines', () => {
    const { image, shifts, moved } = lockPalette(output, lines, target);
    assert.ok(dE(labAt(output, 10, 20), skin) > 2, 'the skin drifted');
    assert.ok(dE(labAt(image, 10, 20), skin) < 0.5, `skin locked: ΔE00 ${dE(labAt(image, 10, 20), skin)}`);
    assert.deepEqual(labAt(image, 4, 20).map(Math.round), labAt(output, 4, 20).map(Math.round), 'a line pixel is untouched');
    assert.ok(shifts.every((s) => s.to !== null), 'every dominant colour had a target within reach');
    assert.ok(moved > 0.6 && moved < 1, `the fills moved, not the lines: ${moved}`);
  });

  it('keeps shading: the L* ramp across the shirt survives the lock', () => {
    const { image } = lockPalette(output, lines, target);
    const left = labAt(image, 30, 20);
    const right = labAt(image, 40, 20);
    const before = labAt(output, 40, 20)[0] - labAt(output, 30, 20)[0];
    assert.ok(Math.abs(right[0] - left[0] - before) < 0.6, `ramp ${right[0] - left[0]} vs ${before}`);
    assert.ok(dE(labAt(image, 34, 20), shirt) < 3, `the shirt's hue is the reference's: ${dE(labAt(image, 34, 20), shirt)}`);
  });

  it('leaves a colour the target does not have (farther than maxDeltaE) where it is', () => {
    const green = lab8(40, 180, 60);
    const odd = labPicture(W, H, (x) => (x < W / 2 ? drift(skin, 8) : green));
    const { image, shifts } = lockPalette(odd, null, target);
    assert.ok(dE(labAt(image, 40, 20), green) < 0.01, 'green stays green');
    assert.ok(shifts.some((s) => s.to === null));
    assert.ok(dE(labAt(image, 5, 20), skin) < 0.5, 'the skin still locks');
  });

  it('is the identity on an output already in the palette, and never changes its input', () => {
    const copy = Float32Array.from(reference.data);
    const { image } = lockPalette(reference, null, target);
    assert.deepEqual(reference.data, copy);
    let worst = 0;
    for (let i = 0; i < image.data.length; i++) worst = Math.max(worst, Math.abs(image.data[i]! - reference.data[i]!));
    assert.ok(worst < 2e-3, `max |Δ| ${worst}`);
  });

  it("takes an approved frame's colours off its lines as a target", () => {
    const approved = framePalette(output, lines);
    assert.ok(approved.entries.every((e) => e.L > 20), 'no line black in the palette');
    const { image } = lockPalette(labPicture(W, H, (x) => (x < W / 2 ? drift(skin, 14) : shirt)), null, approved);
    assert.ok(dE(labAt(image, 5, 20), drift(skin, 8)) < 0.5, 'locked to the approved skin, not the reference');
  });

  it('refuses a grey image and lines of another size', () => {
    assert.throws(() => lockPalette({ data: new Float32Array(4), channels: 1, height: 2, width: 2 }, null, target), /RGB/);
    assert.throws(() => lockPalette(reference, new Uint8Array(3), target), /lines/);
  });
});
