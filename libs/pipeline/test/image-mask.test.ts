import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clamp01, dilateMax, floodFillForeground, maskToLatent, threshold, whiteOut } from '../src/image/mask.ts';
import { at, planar } from '../src/image/tensor.ts';
import type { Planar } from '../src/image/tensor.ts';

const mask = (rows: number[][]): Planar => ({
  data: Float32Array.from(rows.flat()),
  channels: 1,
  height: rows.length,
  width: rows[0].length,
});

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** 3-channel model sketch (paper -1) with the given line pixels (+1). */
function sketch(H: number, W: number, lines: Array<[number, number]>): Planar {
  const p = planar(3, H, W, -1);
  for (const [y, x] of lines) for (let c = 0; c < 3; c++) p.data[at(p, c, y, x)] = 1;
  return p;
}

function squareOutline(y0: number, x0: number, y1: number, x1: number): Array<[number, number]> {
  const pts: Array<[number, number]> = [];
  for (let x = x0; x <= x1; x++) pts.push([y0, x], [y1, x]);
  for (let y = y0 + 1; y < y1; y++) pts.push([y, x0], [y, x1]);
  return pts;
}

describe('clamp01 / threshold / whiteOut', () => {
  it('clamp01 clamps to [0,1] and maps NaN to 0', () => {
    close(clamp01(mask([[-0.5, 0, 0.25, 1, 1.75, NaN]])).data, [0, 0, 0.25, 1, 1, 0], 0);
  });
  it('threshold gives 1 where p >= thr', () => {
    close(threshold(mask([[0.1, 0.5, 0.49, 0.9]]), 0.5).data, [0, 1, 0, 1], 0);
  });
  it('whiteOut keeps the image where mask < thr and paints +1 elsewhere, on every channel', () => {
    const img: Planar = { data: Float32Array.from([-0.5, -0.25, 0, 0.25, /* c1 */ 0.1, 0.2, 0.3, 0.4]), channels: 2, height: 2, width: 2 };
    const m = mask([[0.2, 0.6], [0.5, 0.49]]);
    close(whiteOut(img, m, 0.5).data, [-0.5, 1, 1, 0.25, 0.1, 1, 1, 0.4], 1e-7);
    assert.throws(() => whiteOut(img, mask([[0, 0, 0]]), 0.5), RangeError);
  });
});

describe('dilateMax', () => {
  it('dilates a single pixel into an 11×11 block', () => {
    const m = planar(1, 31, 31);
    m.data[at(m, 0, 15, 15)] = 1;
    const d = dilateMax(m);
    for (let y = 0; y < 31; y++) {
      for (let x = 0; x < 31; x++) {
        const inside = y >= 10 && y <= 20 && x >= 10 && x <= 20;
        assert.equal(d.data[at(d, 0, y, x)], inside ? 1 : 0, `(${y},${x})`);
      }
    }
    let sum = 0;
    for (const v of d.data) sum += v;
    assert.equal(sum, 121);
  });
  it('padding never wins: a corner pixel gives a 6×6 block; maxima of different values', () => {
    const m = planar(1, 12, 12);
    m.data[at(m, 0, 0, 0)] = 0.5;
    m.data[at(m, 0, 0, 8)] = 0.8;
    const d = dilateMax(m);
    // 0.5 reaches rows 0..5, cols 0..5; 0.8 reaches rows 0..5, cols 3..11
    assert.equal(d.data[at(d, 0, 5, 2)], 0.5);
    assert.equal(d.data[at(d, 0, 5, 4)], Math.fround(0.8)); // both in reach: the max wins
    assert.equal(d.data[at(d, 0, 3, 11)], Math.fround(0.8));
    assert.equal(d.data[at(d, 0, 6, 0)], 0); // out of both windows
    let count05 = 0;
    for (const v of d.data) if (v === 0.5) count05++;
    assert.equal(count05, 6 * 3); // rows 0..5 × cols 0..2
    assert.equal(dilateMax(m, 3).data[at(m, 0, 1, 1)], 0.5);
    assert.throws(() => dilateMax(m, 4), RangeError);
  });
});

describe('maskToLatent (contract G8 post)', () => {
  it('bicubic up, clamp, bicubic ×1/factor: hand-computed on a 2×2 column step', () => {
    // 2→4 per row of [0,1]: [-0.10546875, 0.2265625, 0.7734375, 1.10546875] → clamp → [0, .2265625, .7734375, 1]
    // 4→2 (step 2, t=0.5, weights [-0.09375, 0.59375, 0.59375, -0.09375]):
    //   out0: values 0,0,.2265625,.7734375 → 0.06201171875; out1 → 0.93798828125
    const out = maskToLatent(mask([[0, 1], [0, 1]]), 4, 4, 2);
    assert.equal(out.height, 2);
    assert.equal(out.width, 2);
    close(out.data, [0.06201171875, 0.93798828125, 0.06201171875, 0.93798828125], 1e-7);
  });
  it('is not re-clamped after the downscale', () => {
    // identity to 4×4, then step 4: src 1.5, taps 0..3 with t=0.5 on [1,0,0,1] → -0.1875
    const out = maskToLatent(mask([[1, 0, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1]]), 4, 4, 4);
    close(out.data, [-0.1875], 1e-7);
  });
  it('a constant mask stays constant at latent size (1024² → 64² → 8²)', () => {
    const out = maskToLatent(planar(1, 32, 32, 0.7), 64, 64, 8);
    assert.equal(out.data.length, 64);
    for (const v of out.data) assert.ok(Math.abs(v - 0.7) < 1e-6, `${v}`);
  });
});

describe('floodFillForeground', () => {
  it('a closed square outline: outline and interior 1, outside 0', () => {
    const fg = floodFillForeground(sketch(9, 9, squareOutline(2, 2, 6, 6)));
    assert.equal(fg.channels, 1);
    for (let y = 0; y < 9; y++) {
      for (let x = 0; x < 9; x++) {
        const inside = y >= 2 && y <= 6 && x >= 2 && x <= 6;
        assert.equal(fg.data[y * 9 + x], inside ? 1 : 0, `(${y},${x})`);
      }
    }
  });
  it('an open outline leaks: the interior is outside, only the lines stay', () => {
    const pts = squareOutline(2, 2, 6, 6).filter(([y, x]) => !(y === 2 && x === 4));
    const fg = floodFillForeground(sketch(9, 9, pts));
    const onLine = new Set(pts.map(([y, x]) => y * 9 + x));
    for (let i = 0; i < 81; i++) assert.equal(fg.data[i], onLine.has(i) ? 1 : 0, `pixel ${i}`);
  });
  it('a diagonal (8-connected) closed outline still holds its interior', () => {
    // diamond |y-5| + |x-5| = 3 on 11×11
    const pts: Array<[number, number]> = [];
    for (let y = 0; y < 11; y++) for (let x = 0; x < 11; x++) if (Math.abs(y - 5) + Math.abs(x - 5) === 3) pts.push([y, x]);
    const fg = floodFillForeground(sketch(11, 11, pts));
    for (let y = 0; y < 11; y++) {
      for (let x = 0; x < 11; x++) assert.equal(fg.data[y * 11 + x], Math.abs(y - 5) + Math.abs(x - 5) <= 3 ? 1 : 0, `(${y},${x})`);
    }
  });
  it('uses the channel mean and the lineThreshold option', () => {
    const p = sketch(5, 5, squareOutline(1, 1, 3, 3));
    // weaker lines: 0.5 everywhere on the outline
    for (let i = 0; i < p.data.length; i++) if (p.data[i] === 1) p.data[i] = 0.5;
    assert.equal(floodFillForeground(p).data[12], 1); // centre enclosed (0.5 > 0)
    assert.equal(floodFillForeground(p, { lineThreshold: 0.6 }).data.reduce((a, b) => a + b, 0), 0);
    // one bright channel only: mean (1 - 1 - 1)/3 < 0 → not a line
    const q = planar(3, 3, 3, -1);
    q.data[at(q, 0, 1, 1)] = 1;
    assert.equal(floodFillForeground(q).data.reduce((a, b) => a + b, 0), 0);
  });
  it('handles a large canvas iteratively (no recursion)', () => {
    const fg = floodFillForeground(sketch(1024, 1024, squareOutline(100, 100, 900, 900)));
    assert.equal(fg.data[500 * 1024 + 500], 1);
    assert.equal(fg.data[50 * 1024 + 50], 0);
    assert.equal(fg.data.reduce((a, b) => a + b, 0), 801 * 801);
  });
});
