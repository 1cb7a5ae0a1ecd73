/**
 * ΔE00 against the published test data of Sharma, Wu and Dalal (2005), Table 1: all 34 pairs, to
 * the 4 decimals published, in both argument orders.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deltaE00, deltaE00Reference, rotationFactor, rotationFactorExact } from '../src/ciede2000.ts';
import { prng } from './fixtures.ts';

// L1, a1, b1, L2, a2, b2, ΔE00
const SHARMA: ReadonlyArray<readonly [number, number, number, number, number, number, number]> = [
  [50.0, 2.6772, -79.7751, 50.0, 0.0, -82.7485, 2.0425],
  [50.0, 3.1571, -77.2803, 50.0, 0.0, -82.7485, 2.8615],
  [50.0, 2.8361, -74.02, 50.0, 0.0, -82.7485, 3.4412],
  [50.0, -1.3802, -84.2814, 50.0, 0.0, -82.7485, 1.0],
  [50.0, -1.1848, -84.8006, 50.0, 0.0, -82.7485, 1.0],
  [50.0, -0.9009, -85.5211, 50.0, 0.0, -82.7485, 1.0],
  [50.0, 0.0, 0.0, 50.0, -1.0, 2.0, 2.3669],
  [50.0, -1.0, 2.0, 50.0, 0.0, 0.0, 2.3669],
  [50.0, 2.49, -0.001, 50.0, -2.49, 0.0009, 7.1792],
  [50.0, 2.49, -0.001, 50.0, -2.49, 0.001, 7.1792],
  [50.0, 2.49, -0.001, 50.0, -2.49, 0.0011, 7.2195],
  [50.0, 2.49, -0.001, 50.0, -2.49, 0.0012, 7.2195],
  [50.0, -0.001, 2.49, 50.0, 0.0009, -2.49, 4.8045],
  [50.0, -0.001, 2.49, 50.0, 0.001, -2.49, 4.8045],
  [50.0, -0.001, 2.49, 50.0, 0.0011, -2.49, 4.7461],
  [50.0, 2.5, 0.0, 50.0, 0.0, -2.5, 4.3065],
  [50.0, 2.5, 0.0, 73.0, 25.0, -18.0, 27.1492],
  [50.0, 2.5, 0.0, 61.0, -5.0, 29.0, 22.8977],
  [50.0, 2.5, 0.0, 56.0, -27.0, -3.0, 31.903],
  [50.0, 2.5, 0.0, 58.0, 24.0, 15.0, 19.4535],
  [50.0, 2.5, 0.0, 50.0, 3.1736, 0.5854, 1.0],
  [50.0, 2.5, 0.0, 50.0, 3.2972, 0.0, 1.0],
  [50.0, 2.5, 0.0, 50.0, 1.8634, 0.5757, 1.0],
  [50.0, 2.5, 0.0, 50.0, 3.2592, 0.335, 1.0],
  [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
  [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.263],
  [61.2901, 3.7196, -5.3901, 61.4292, 2.248, -4.962, 1.8731],
  [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
  [22.7233, 20.0904, -46.694, 23.0331, 14.973, -42.5619, 2.0373],
  [36.4612, 47.858, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
  [90.8027, -2.0831, 1.441, 91.1528, -1.6435, 0.0447, 1.4441],
  [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
  [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
  [2.0776, 0.0795, -1.135, 0.9033, -0.0636, -0.5514, 0.9082],
];

describe('CIEDE2000', () => {
  for (const [name, fn] of [
    ['deltaE00', deltaE00],
    ['deltaE00Reference', deltaE00Reference],
  ] as const) {
    it(`${name} reproduces the 34 pairs of Sharma, Wu and Dalal to 1e-4, both ways round`, () => {
      assert.equal(SHARMA.length, 34);
      SHARMA.forEach(([L1, a1, b1, L2, a2, b2, expected], i) => {
        const there = fn(L1, a1, b1, L2, a2, b2);
        const back = fn(L2, a2, b2, L1, a1, b1);
        assert.ok(Math.abs(there - expected) <= 1e-4 + 1e-12, `pair ${i + 1}: ${there} ≠ ${expected}`);
        assert.ok(Math.abs(back - expected) <= 1e-4 + 1e-12, `pair ${i + 1} reversed: ${back} ≠ ${expected}`);
      });
    });
  }

  it('the vector form equals the textbook form on random colours, neutrals and opposite hues included', () => {
    const rnd = prng(7);
    const pick = (): [number, number, number] => {
      const r = rnd();
      if (r < 0.05) return [rnd() * 100, 0, 0];
      return [rnd() * 100, (rnd() - 0.5) * 200, (rnd() - 0.5) * 200];
    };
    let worst = 0;
    for (let i = 0; i < 20000; i++) {
      const [L1, a1, b1] = pick();
      // Every tenth pair: the exact opposite hue, where the paper's case rules decide.
      const [L2, a2, b2] = i % 10 === 0 ? [rnd() * 100, -a1 * 0.7, -b1 * 0.7] : pick();
      worst = Math.max(worst, Math.abs(deltaE00(L1, a1, b1, L2, a2, b2) - deltaE00Reference(L1, a1, b1, L2, a2, b2)));
    }
    assert.ok(worst < 1e-9, `largest disagreement ${worst}`);
  });

  it("takes the rotation term's sin(2Δθ) from its table within 1e-14, over the hues that need it", () => {
    let worst = 0;
    for (let i = 0; i <= 220_000; i++) {
      const h = 140 + i / 1000;
      const r = (h * Math.PI) / 180;
      // The hue vector turned by −275°, and t = tan((h − 275°)/2) from it, as deltaE00 computes it.
      const [c, s] = [Math.cos(r), Math.sin(r)];
      const [c275, s275] = [Math.cos((275 * Math.PI) / 180), Math.sin((275 * Math.PI) / 180)];
      const t = (s * c275 - c * s275) / (1 + c * c275 + s * s275);
      worst = Math.max(worst, Math.abs(rotationFactor(t) - rotationFactorExact(h)));
    }
    assert.ok(worst < 1e-14, `largest error ${worst}`);
  });

  it('is 0 for equal colours and symmetric', () => {
    assert.equal(deltaE00(53.2, 80.1, 67.2, 53.2, 80.1, 67.2), 0);
    assert.equal(deltaE00(40, 0, 0, 40, 0, 0), 0);
    assert.equal(deltaE00(30, 10, -20, 70, -5, 15), deltaE00(70, -5, 15, 30, 10, -20));
  });
});
