import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crop, fitLetterbox } from '../src/image/letterbox.ts';
import { resizeBicubicAA } from '../src/image/resample.ts';
import { blankSketch, preprocessSketch } from '../src/image/sketch.ts';
import { clipPixels, imagenetPixels, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD } from '../src/image/clip.ts';
import { at, planar } from '../src/image/tensor.ts';
import type { Planar } from '../src/image/tensor.ts';
import { PipelineError } from '../src/errors.ts';

function ramp(c: number, h: number, w: number): Planar {
  const p = planar(c, h, w);
  for (let i = 0; i < p.data.length; i++) p.data[i] = ((i * 37) % 101) / 50 - 1;
  return p;
}

describe('fitLetterbox (contract 2.1 step 1)', () => {
  it('100 high × 50 wide into 64×64: 64×32 centred horizontally, -1 fill', () => {
    const src = planar(3, 100, 50, 0.5);
    const { image, box } = fitLetterbox(src, 64, 64);
    // r = min(64/100, 64/50) = 0.64 → (64, 32); left = (64-32)//2 = 16, top = 0
    assert.deepEqual(box, { left: 16, top: 0, width: 32, height: 64 });
    assert.equal(image.channels, 3);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const v = image.data[at(image, c, y, x)];
          if (x < 16 || x >= 48) assert.equal(v, -1, `fill at ${c},${y},${x}`);
          else assert.ok(Math.abs(v - 0.5) < 1e-6, `content at ${c},${y},${x}: ${v}`);
        }
      }
    }
  });
  it('50 high × 100 wide into 64×64: top = 16', () => {
    const { box } = fitLetterbox(planar(1, 50, 100), 64, 64);
    assert.deepEqual(box, { left: 0, top: 16, width: 64, height: 32 });
  });
  it('odd margins floor, content is the AA bicubic resize, crop undoes it', () => {
    const src = ramp(2, 10, 10);
    const { image, box } = fitLetterbox(src, 5, 8); // r = 0.5 → 5×5, left = floor(3/2) = 1
    assert.deepEqual(box, { left: 1, top: 0, width: 5, height: 5 });
    const expected = resizeBicubicAA(src, 5, 5, { alignCorners: false });
    assert.deepEqual(crop(image, box).data, expected.data);
    for (let y = 0; y < 5; y++) {
      assert.equal(image.data[at(image, 1, y, 0)], -1);
      assert.equal(image.data[at(image, 1, y, 6)], -1);
      assert.equal(image.data[at(image, 1, y, 7)], -1);
    }
  });
  it('truncates like int(oh*r) and never goes below 1 pixel', () => {
    // r = 64/1000 → (trunc(0.192) → 1, 64); top = (64-1)//2 = 31
    assert.deepEqual(fitLetterbox(planar(1, 3, 1000), 64, 64).box, { left: 0, top: 31, width: 64, height: 1 });
    // 7 × 3 into 10 × 10: r = 10/7, w' = trunc(3·10/7) = trunc(4.285..) = 4, left = 3
    assert.deepEqual(fitLetterbox(planar(1, 7, 3), 10, 10).box, { left: 3, top: 0, width: 4, height: 10 });
  });
  it('crop rejects boxes outside the image', () => {
    assert.throws(() => crop(planar(1, 4, 4), { left: 2, top: 0, width: 3, height: 1 }), RangeError);
  });
});

describe('sketch polarity', () => {
  it('invert negates, none copies, unknown is INVALID_KNOB', () => {
    const src: Planar = { data: Float32Array.from([-1, 0.5, 1]), channels: 1, height: 1, width: 3 };
    assert.deepEqual(Array.from(preprocessSketch(src, 'invert').data), [1, -0.5, -1]);
    const none = preprocessSketch(src, 'none');
    assert.deepEqual(Array.from(none.data), [-1, 0.5, 1]);
    assert.notEqual(none.data, src.data);
    assert.throws(
      () => preprocessSketch(src, 'extract' as unknown as 'none'),
      (e: unknown) => e instanceof PipelineError && e.code === 'INVALID_KNOB',
    );
  });
  it('blankSketch is 3×H×W of -1', () => {
    const b = blankSketch(4, 6);
    assert.equal(b.channels, 3);
    assert.equal(b.data.length, 72);
    assert.ok(b.data.every((v) => v === -1), 'all -1');
  });
});

describe('encoder pixel preparation', () => {
  it('clipPixels: 224² identity keeps values, then ((x+1)/2 - mean)/std', () => {
    const src = ramp(3, 224, 224);
    const out = clipPixels(src);
    const n = 224 * 224;
    for (const i of [0, 1, 777, n - 1]) {
      for (let c = 0; c < 3; c++) {
        const want = ((src.data[c * n + i] + 1) / 2 - CLIP_MEAN[c]) / CLIP_STD[c];
        assert.ok(Math.abs(out.data[c * n + i] - want) < 1e-5, `c${c} i${i}`);
      }
    }
  });
  it('clipPixels stretches any size to 224² (constant stays constant)', () => {
    const out = clipPixels(planar(3, 300, 517, 0));
    assert.equal(out.height, 224);
    assert.equal(out.width, 224);
    // x = 0 → 0.5 → (0.5 - mean)/std, e.g. red (0.5-0.48145466)/0.26862954 = 0.069036...
    assert.ok(Math.abs(out.data[0] - 0.0690368) < 1e-5, `${out.data[0]}`);
    for (let c = 0; c < 3; c++) {
      const want = (0.5 - CLIP_MEAN[c]) / CLIP_STD[c];
      assert.ok(Math.abs(out.data[c * 224 * 224 + 5000] - want) < 1e-5, `c${c}`);
    }
  });
  it('imagenetPixels: (x+1)/2, bilinear AA to size², ImageNet normalisation', () => {
    const out = imagenetPixels(planar(3, 40, 30, 1), 16);
    assert.equal(out.data.length, 3 * 256);
    for (let c = 0; c < 3; c++) {
      const want = (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]; // red: 0.515/0.229 = 2.2489...
      assert.ok(Math.abs(out.data[c * 256 + 17] - want) < 1e-5, `c${c}`);
    }
    assert.ok(Math.abs(out.data[0] - 2.2489083) < 1e-5, `${out.data[0]}`);
  });
});
