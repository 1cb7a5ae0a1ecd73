/**
 * Line-extractor pre/post-processing and the invert-webui preprocessor (contract G10): each
 * extractor gets its own input convention and its own way back to white-on-black lines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  extractorCanvas,
  extractorInput,
  extractorLines,
  fitLetterbox,
  gaussianBlur,
  gaussianKernel,
  invertWebui,
  planar,
  type Planar,
} from '../src/image/index.ts';

/** A white 3-channel drawing ([−1,1]) with one black full-height vertical line at column `x`. */
function lineDrawing(H: number, W: number, x: number): Planar {
  const img = planar(3, H, W, 1);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) img.data[(c * H + y) * W + x] = -1;
  return img;
}

describe('line extractors: pre- and post-processing per extractor', () => {
  it('gaussian blur follows OpenCV: kernel 19 for 8-bit σ 3, 49 for float σ 6, reflect-101 borders', () => {
    const k = gaussianKernel(19, 3);
    assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok(Math.abs(k[9]! - 0.13318) < 1e-4, `centre weight ${k[9]}`);
    // An impulse at the left edge: reflect-101 mirrors column 1 to −1, so columns 0..1 see it
    // as if from both sides; the blurred row is symmetric around the edge's mirror.
    const img = planar(1, 1, 30);
    img.data[0] = 255;
    const b8 = gaussianBlur(img, 3, true);
    assert.ok(b8.data.every((v) => Number.isInteger(v)), '8-bit results are whole levels');
    assert.equal(b8.data[0], Math.round(255 * k[9]!));
    assert.equal(b8.data[9], Math.round(255 * k[18]!));
    assert.equal(b8.data[10], 0, 'nothing beyond the kernel radius (9)');
    const bf = gaussianBlur(img, 6, false);
    assert.ok(bf.data[24]! > 0 && bf.data[25]! === 0, 'float σ 6: radius 24');
  });

  it('lineart_keras: blur difference over the global max in, max over channels out, not negated', () => {
    const u8 = extractorCanvas(lineDrawing(64, 64, 32), 64);
    const input = extractorInput('lineart_keras', u8);
    assert.deepEqual(input.dims, [3, 1, 64, 64]);
    const n = 64 * 64;
    let max = -Infinity;
    for (const v of input.data) max = Math.max(max, v);
    assert.ok(Math.abs(max - 1) < 1e-6, 'normalised by the global maximum');
    assert.ok(input.data[32 * 64 + 31]! > 0, 'paper beside the line is brighter than its blur');
    assert.ok(input.data[32 * 64 + 32]! < 0, 'the dark line is darker than its blur');
    // Outputs: channel maxima 0.3 and 0.05 → (0.3 − 0.5)·2 and (0 − 0.5)·2.
    const lines = { data: new Float32Array(3 * n), dims: [3, 1, 64, 64] };
    lines.data[0] = 0.3;
    lines.data[n + 0] = 0.2;
    lines.data[1] = 0.05;
    lines.data[2 * n + 2] = 0.9;
    const out = extractorLines('lineart_keras', lines);
    assert.ok(Math.abs(out.data[0]! - -0.4) < 1e-6);
    assert.equal(out.data[1], -1, 'below 0.1 is paper');
    assert.ok(Math.abs(out.data[2]! - 0.8) < 1e-6, 'strong lines are bright (no negation)');
  });

  it('lineart: [−1,1] RGB in, negated out', () => {
    const u8 = extractorCanvas(lineDrawing(8, 8, 4), 8);
    const input = extractorInput('lineart', u8);
    assert.deepEqual(input.dims, [1, 3, 8, 8]);
    assert.ok(input.data.every((v) => v >= -1 && v <= 1));
    const out = extractorLines('lineart', { data: Float32Array.of(-0.75, 0.5, 0, 1), dims: [1, 1, 2, 2] });
    assert.deepEqual([...out.data], [0.75, -0.5, -0, -1]);
  });

  it('lineart_denoise: the red channel in 0–255 in; clamp, /127.5 − 1, negate out', () => {
    const img = planar(3, 1, 2);
    img.data.set([1, -1, /* green */ -1, -1, /* blue */ -1, -1]);
    const input = extractorInput('lineart_denoise', extractorCanvas(img, 2));
    assert.deepEqual(input.dims, [1, 1, 2, 2]);
    assert.ok(input.data[0]! > 100, `red levels, not [−1,1]: ${input.data[0]}`);
    const out = extractorLines('lineart_denoise', { data: Float32Array.of(300, 255, 127.5, -20), dims: [1, 1, 2, 2] });
    assert.deepEqual([...out.data].map((v) => Math.round(v * 1e6) / 1e6 + 0), [-1, -1, 0, 1]);
  });

  it('lineart_sk: raw 0–255 in; negated sigmoid out (lines span [−1, 0], as the app)', () => {
    const input = extractorInput('lineart_sk', extractorCanvas(planar(3, 2, 2, 1), 2));
    assert.deepEqual(input.dims, [1, 3, 2, 2]);
    assert.ok(input.data.every((v) => v === 255), 'white paper is 255');
    const out = extractorLines('lineart_sk', { data: Float32Array.of(1, 0.25, 0, 0.5), dims: [1, 1, 2, 2] });
    assert.deepEqual([...out.data], [-1, -0.25, -0, -0.5]);
  });

  it('the S×S result is fitted with the sketch’s own proportions, resized once', () => {
    const lines = planar(3, 512, 512, -1);
    const { box, image } = fitLetterbox(lines, 128, 128, { height: 100, width: 200 });
    assert.deepEqual(box, { left: 0, top: 32, width: 128, height: 64 });
    assert.equal(image.height, 128);
  });
});

describe('invert-webui preprocessor', () => {
  it('a black full-height line on white becomes level 127 (mid grey, bright against paper −1)', () => {
    const out = invertWebui(lineDrawing(40, 40, 20));
    const at = (c: number, y: number, x: number) => out.data[(c * 40 + y) * 40 + x]!;
    // Only the line pixels exceed 8, all with the same value, so the median is that value and
    // intensity / median · 127 = 127 on the line: 127 / 127.5 − 1.
    for (const c of [0, 1, 2]) assert.ok(Math.abs(at(c, 5, 20) - (127 / 127.5 - 1)) < 1e-7);
    assert.equal(at(0, 5, 19), -1, 'paper next to the line');
    assert.equal(at(2, 39, 0), -1);
  });

  it('a blank page stays paper (no division by an empty median)', () => {
    const out = invertWebui(planar(3, 16, 16, 1));
    assert.ok(out.data.every((v) => v === -1));
  });
});
