import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keysCubic, resizeBicubic, resizeBicubicAA, resizeBilinearAA } from '../src/image/resample.ts';
import { planar } from '../src/image/tensor.ts';
import type { Planar } from '../src/image/tensor.ts';

const row = (values: number[]): Planar => ({ data: Float32Array.from(values), channels: 1, height: 1, width: values.length });
const col = (values: number[]): Planar => ({ data: Float32Array.from(values), channels: 1, height: values.length, width: 1 });

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

function random(c: number, h: number, w: number, seed = 1): Planar {
  const p = planar(c, h, w);
  let s = seed;
  for (let i = 0; i < p.data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    p.data[i] = (s / 2147483648) * 2 - 1;
  }
  return p;
}

describe('keysCubic', () => {
  it('matches the hand-evaluated Keys polynomials', () => {
    // a = -0.75: (a+2)|x|^3 - (a+3)|x|^2 + 1 for |x|<1, a|x|^3 - 5a|x|^2 + 8a|x| - 4a for 1<=|x|<2
    assert.equal(keysCubic(0, -0.75), 1);
    assert.equal(keysCubic(1, -0.75), 0);
    assert.equal(keysCubic(2, -0.75), 0);
    assert.equal(keysCubic(0.5, -0.75), 0.59375); // 1.25/8 - 2.25/4 + 1
    assert.equal(keysCubic(-1.5, -0.75), -0.09375); // -0.75*3.375 + 3.75*2.25 - 6*1.5 + 3
    assert.equal(keysCubic(0.25, -0.5), 0.8671875); // 1.5/64 - 2.5/16 + 1
    assert.equal(keysCubic(1.25, -0.5), -0.0703125);
    assert.equal(keysCubic(2.5, -0.5), 0);
  });
});

describe('resizeBicubic (PyTorch bicubic, antialias=False, a=-0.75)', () => {
  // t = 0.5 weights: [K(1.5), K(0.5), K(0.5), K(1.5)] = [-0.09375, 0.59375, 0.59375, -0.09375]
  it('4→2 of a ramp: src = 0.5 and 2.5, taps clamped at the edge', () => {
    // out0: taps -1,0,1,2 → values 0,0,1,2: 0.59375*1 - 0.09375*2 = 0.40625
    // out1: taps 1,2,3,4→3 → values 1,2,3,3: -0.09375 + 1.1875 + 1.78125 - 0.28125 = 2.59375
    close(resizeBicubic(row([0, 1, 2, 3]), 1, 2).data, [0.40625, 2.59375], 0);
    close(resizeBicubic(col([0, 1, 2, 3]), 2, 1).data, [0.40625, 2.59375], 0);
  });

  it('2→4 of [0,1]: src = -0.25, 0.25, 0.75, 1.25', () => {
    // K(0.25)=0.87890625 K(0.75)=0.26171875 K(1.25)=-0.10546875 K(1.75)=-0.03515625 (a=-0.75)
    // out0: f=-1, t=0.75, taps clamp to 0,0,0,1 → K(1.25)·1 = -0.10546875
    // out1: f=0, t=0.25, taps 0,0,1,1 → K(0.75)+K(1.75) = 0.2265625
    const expected = [-0.10546875, 0.2265625, 0.7734375, 1.10546875];
    close(resizeBicubic(row([0, 1]), 1, 4).data, expected, 0);
    close(resizeBicubic(col([0, 1]), 4, 1).data, expected, 0);
  });

  it('is separable: an outer product resizes to the outer product of the 1-D results', () => {
    const src: Planar = { data: Float32Array.from([0, 0, 0, 1]), channels: 1, height: 2, width: 2 }; // u=[0,1] ⊗ v=[0,1]
    const r = [-0.10546875, 0.2265625, 0.7734375, 1.10546875];
    const out = resizeBicubic(src, 4, 4);
    close(out.data, r.flatMap((a) => r.map((b) => a * b)), 1e-7);
  });

  it('uses step = 1/scaleFactor when a factor is given', () => {
    // step 2.5 → out0 src = 0.75, f=0, t=0.75, taps 0,0,1,2: K(0.25)·1 + K(1.25)·2 = 0.66796875
    const out = resizeBicubic(row([0, 1, 2, 3]), 1, 2, { h: 1, w: 0.4 });
    assert.equal(out.data[0], 0.66796875);
    close(resizeBicubic(row([0, 1, 2, 3]), 1, 2, { h: 1, w: 0.5 }).data, [0.40625, 2.59375], 0);
  });

  it('identity resize returns the input exactly (all channels)', () => {
    const src = random(3, 5, 7);
    assert.deepEqual(resizeBicubic(src, 5, 7).data, src.data);
  });

  it('rejects bad sizes', () => {
    assert.throws(() => resizeBicubic(row([1, 2]), 0, 2), RangeError);
    assert.throws(() => resizeBicubic(row([1, 2]), 1, 2.5), RangeError);
  });
});

describe('resizeBicubicAA (PyTorch bicubic, antialias=True, a=-0.5)', () => {
  it('identity resize returns the input (both align modes)', () => {
    const src = random(2, 6, 9, 7);
    close(resizeBicubicAA(src, 6, 9, { alignCorners: false }).data, src.data, 0);
    close(resizeBicubicAA(src, 6, 9, { alignCorners: true }).data, src.data, 0);
  });

  it('keeps a constant image constant on downscale and upscale', () => {
    const src = planar(3, 37, 53, 0.3);
    for (const alignCorners of [false, true]) {
      for (const [h, w] of [[10, 7], [1, 1], [80, 120]] as const) {
        const out = resizeBicubicAA(src, h, w, { alignCorners });
        assert.equal(out.data.length, 3 * h * w);
        for (const v of out.data) assert.ok(Math.abs(v - 0.3) < 1e-6, `${v}`);
      }
    }
  });

  it('4→2 of a step [0,0,1,1] matches the hand-computed normalised weights', () => {
    // step 2: support 4, inv 0.5. out0: c=1, j=0..3, args (j-0.5)/2 = -0.25,0.25,0.75,1.25
    // weights K = .8671875,.8671875,.2265625,-.0703125, sum 121/64 → (0.2265625-0.0703125)/(121/64) = 10/121
    // out1 mirrors: 111/121
    const expected = [10 / 121, 111 / 121];
    close(resizeBicubicAA(row([0, 0, 1, 1]), 1, 2, { alignCorners: false }).data, expected);
    close(resizeBicubicAA(col([0, 0, 1, 1]), 2, 1, { alignCorners: false }).data, expected);
  });

  it('2→4 upscale (support 2, inv 1): out-of-range taps dropped and renormalised', () => {
    // out0: c=0.25, j=0,1, args 0.25,1.25 → (-0.0703125)/(0.796875) = -3/34
    // out1: c=0.75, args -0.25,0.75 → 0.2265625/1.09375 = 29/140
    close(resizeBicubicAA(row([0, 1]), 1, 4, { alignCorners: false }).data, [-3 / 34, 29 / 140, 111 / 140, 37 / 34]);
  });

  it('align_corners=True follows the contract literally: step (in-1)/(out-1), centre still step·(i+0.5)', () => {
    // 2→4: step 1/3. out0: c=1/6, taps j=0,1 with args 1/3, 4/3: K=7/9, -2/27 → -2/19
    // out1: c=1/2 → args 0,1 → exactly input[0]; out2: c=5/6 → args -1/3, 2/3: (1/3)/(10/9) = 0.3
    // out3: c=7/6 → args -2/3, 1/3 → (7/9)/(10/9) = 0.7.
    // So the corners are NOT reproduced (unlike non-AA align_corners); PyTorch's AA kernel only
    // uses align_corners for the step. The contract reports this matching torch to 1e-15.
    const out = resizeBicubicAA(row([0, 1]), 1, 4, { alignCorners: true });
    close(out.data, [-2 / 19, 0, 0.3, 0.7]);
    // out = 1 with align corners: step 0, c = 0, taps j=0,1 with args 0.5, 1.5 (a=-0.5)
    const k05 = keysCubic(0.5, -0.5);
    const k15 = keysCubic(1.5, -0.5);
    close(resizeBicubicAA(row([0, 1, 5]), 1, 1, { alignCorners: true }).data, [k15 / (k05 + k15)]);
  });

  it('align_corners=True downscale uses step (in-1)/(out-1)', () => {
    // 5→2: step 4, support 8, inv 1/4. out0: c=2, j=0..4 args (j-1.5)/4
    const src = [0, 1, 2, 3, 4];
    const expect = (c: number): number => {
      let s = 0;
      let t = 0;
      for (let j = 0; j < 5; j++) {
        const k = keysCubic((j - c + 0.5) / 4, -0.5);
        s += k * src[j];
        t += k;
      }
      return s / t;
    };
    // out0 by hand: weights K(0.375), K(0.125), K(0.125), K(0.375), K(0.625)
    //   = 0.7275390625, 0.9638671875, 0.9638671875, 0.7275390625, 0.3896484375
    const w = [0.7275390625, 0.9638671875, 0.9638671875, 0.7275390625, 0.3896484375];
    const out0 = w.reduce((a, k, j) => a + k * src[j], 0) / w.reduce((a, k) => a + k, 0);
    assert.ok(Math.abs(out0 - 6792 / 3863) < 1e-12, `${out0}`); // 6.6328125 / 3.7724609375
    close(resizeBicubicAA(row(src), 1, 2, { alignCorners: true }).data, [out0, expect(6)]);
  });
});

describe('resizeBilinearAA (torchvision bilinear antialias)', () => {
  it('4→2 of a step uses a triangle of support 2', () => {
    // out0: c=1, j=0..2, args -0.25,0.25,0.75 → 0.75,0.75,0.25 → 0.25/1.75 = 1/7; out1 = 6/7
    close(resizeBilinearAA(row([0, 0, 1, 1]), 1, 2).data, [1 / 7, 6 / 7]);
  });
  it('2→4 upscale equals plain bilinear with edge clamp', () => {
    close(resizeBilinearAA(row([0, 1]), 1, 4).data, [0, 0.25, 0.75, 1]);
    close(resizeBilinearAA(col([0, 1]), 4, 1).data, [0, 0.25, 0.75, 1]);
  });
  it('keeps constants constant and identity exact', () => {
    for (const v of resizeBilinearAA(planar(3, 50, 31, -0.25), 17, 64).data) assert.ok(Math.abs(v + 0.25) < 1e-6);
    const src = random(1, 4, 6, 3);
    close(resizeBilinearAA(src, 4, 6).data, src.data, 0);
  });
});
