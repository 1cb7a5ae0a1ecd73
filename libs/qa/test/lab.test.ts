/** sRGB → CIELAB (D65): known colours, the tables against the closed form, 8-bit input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { labToSrgb, planarToLab, rgb8ToLab, srgbToLab } from '../src/lab.ts';
import { prng } from './fixtures.ts';

const close = (actual: number, expected: number, tol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);

describe('sRGB → CIELAB', () => {
  it('gives the textbook values of white, black, grey and the primaries', () => {
    // Values of the sRGB/D65 matrix and white used here (Lindbloom's calculator gives the same).
    const cases: Array<[[number, number, number], [number, number, number]]> = [
      [[1, 1, 1], [100, 0, 0]],
      [[0, 0, 0], [0, 0, 0]],
      [[0.5, 0.5, 0.5], [53.3890, 0, 0]],
      [[1, 0, 0], [53.2408, 80.0925, 67.2032]],
      [[0, 1, 0], [87.7347, -86.1827, 83.1793]],
      [[0, 0, 1], [32.2970, 79.1875, -107.8602]],
    ];
    for (const [rgb, lab] of cases) {
      const got = srgbToLab(...rgb);
      for (let c = 0; c < 3; c++) close(got[c], lab[c], 5e-4, `${rgb} component ${c}`);
    }
  });

  it('converts whole planar images through its tables within 2e-4 of the closed form', () => {
    const rnd = prng(3);
    const W = 97;
    const H = 61;
    const n = W * H;
    const data = new Float32Array(3 * n).map(() => rnd() * 2 - 1);
    const lab = planarToLab({ data, channels: 3, height: H, width: W });
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = srgbToLab((data[i] + 1) / 2, (data[n + i] + 1) / 2, (data[2 * n + i] + 1) / 2);
      worst = Math.max(worst, Math.abs(lab.L[i] - want[0]), Math.abs(lab.a[i] - want[1]), Math.abs(lab.b[i] - want[2]));
    }
    assert.ok(worst < 2e-4, `largest error ${worst}`);
  });

  it('reads 8-bit interleaved RGB and one-channel grey like planar RGB', () => {
    const rgb8 = Uint8Array.from([255, 0, 0, 10, 200, 30]);
    const lab = rgb8ToLab(rgb8, 2, 1);
    const want = srgbToLab(10 / 255, 200 / 255, 30 / 255);
    close(lab.L[1], want[0], 1e-4, 'L');
    close(lab.a[1], want[1], 1e-4, 'a');
    close(lab.b[1], want[2], 1e-4, 'b');
    const grey = planarToLab({ data: Float32Array.from([0]), channels: 1, height: 1, width: 1 });
    close(grey.L[0], srgbToLab(0.5, 0.5, 0.5)[0], 1e-4, 'grey L');
    close(grey.a[0], 0, 1e-4, 'grey a');
  });

  it('goes back to sRGB inside the gamut', () => {
    const rgb: [number, number, number] = [0.2, 0.6, 0.9];
    const back = labToSrgb(...srgbToLab(...rgb));
    for (let c = 0; c < 3; c++) close(back[c], rgb[c], 1e-6, `channel ${c}`);
  });
});
