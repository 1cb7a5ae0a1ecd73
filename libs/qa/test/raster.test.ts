/**
 * The fast raster kernels against their plain definitions: the fused sketch pass against lineMap +
 * poolAny, the run-based regions against a flood fill, the bit-raster dilation against the byte
 * one, and the strided colour grid and the fills' L* against the full grid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Planar } from '@celfarm/pipeline';
import { cellLightness, detectPolarity, dilate, dilateBits, labGrid, lineMap, maskGrid, packBits, poolAny, regions, sketchLines } from '../src/raster.ts';
import { prng } from './fixtures.ts';

/** Regions by breadth-first flood fill, numbered in the raster order of their first cell (the definition). */
function floodRegions(lines: Uint8Array, W: number, H: number): { labels: Int32Array; sizes: number[] } {
  const labels = new Int32Array(W * H);
  const sizes = [0];
  for (let start = 0; start < W * H; start++) {
    if (lines[start] || labels[start]) continue;
    const id = sizes.length;
    const queue = [start];
    labels[start] = id;
    for (let q = 0; q < queue.length; q++) {
      const i = queue[q]!;
      const x = i % W;
      for (const j of [x > 0 ? i - 1 : -1, x < W - 1 ? i + 1 : -1, i - W, i + W]) {
        if (j >= 0 && j < W * H && !lines[j] && !labels[j]) {
          labels[j] = id;
          queue.push(j);
        }
      }
    }
    sizes.push(queue.length);
  }
  return { labels, sizes };
}

/** A random sketch-like planar image: mostly paper, strokes of ink, some values at and around the split. */
function randomSketch(rnd: () => number, W: number, H: number, C: number, light: boolean): Planar {
  const n = W * H;
  const data = new Float32Array(C * n);
  const paper = light ? -1 : 1;
  const special = [0, -0, 1e-7, -1e-7, 1 / 3, -1 / 3, Number.NaN];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    for (let c = 0; c < C; c++) {
      let v = paper;
      if (r < 0.08) v = -paper; // ink
      else if (r < 0.12) v = rnd() * 2 - 1; // anti-aliased edge
      else if (r < 0.13) v = special[Math.floor(rnd() * special.length)]!;
      if (C > 1 && rnd() < 0.05) v = rnd() * 2 - 1; // a coloured line or paper
      data[c * n + i] = v;
    }
  }
  return { data, channels: C, height: H, width: W };
}

describe('raster kernels', () => {
  it('sketchLines finds the pixels of lineMap and the cells of poolAny, for 1–4 channels, either polarity, any threshold', () => {
    const rnd = prng(21);
    for (let t = 0; t < 120; t++) {
      const W = 1 + Math.floor(rnd() * 45);
      const H = 1 + Math.floor(rnd() * 30);
      const C = [1, 3, 1, 3, 2, 4][t % 6]!;
      const light = t % 2 === 1;
      const sketch = randomSketch(rnd, W, H, C, light);
      const polarity = light ? 'light-lines' : 'dark-lines';
      const threshold = [0.5, 0.3, 0.7, 0.5, 0.1, 0.9][Math.floor(t / 6) % 6]!;
      const cell = 1 + (t % 5);
      const map = lineMap(sketch, polarity, threshold);
      const got = sketchLines(sketch, polarity, threshold, cell);
      const want: number[] = [];
      map.forEach((v, i) => v && want.push(i));
      assert.deepEqual([...got.pixels], want, `pixels, case ${t} (${W}×${H}, ${C} channels, ${polarity}, threshold ${threshold})`);
      const cells = poolAny(map, W, H, cell);
      assert.deepEqual(got.cells, cells, `cells, case ${t}`);
      assert.deepEqual(got.bits, packBits(cells, Math.ceil(W / cell), Math.ceil(H / cell)), `bits, case ${t}`);
    }
  });

  it('regions numbers the paper exactly as a flood fill does', () => {
    const rnd = prng(5);
    for (let t = 0; t < 400; t++) {
      const W = 1 + Math.floor(rnd() * 40);
      const H = 1 + Math.floor(rnd() * 40);
      const p = [0, 1, 0.1, 0.3, 0.5, 0.7][t % 6]!;
      const lines = new Uint8Array(W * H).map(() => (rnd() < p ? 1 : 0));
      const got = regions(lines, W, H);
      const want = floodRegions(lines, W, H);
      assert.deepEqual(got.labels, want.labels, `labels, case ${t} (${W}×${H}, p ${p})`);
      assert.deepEqual([...got.sizes], want.sizes, `sizes, case ${t}`);
    }
  });

  it('dilateBits dilates as dilate does, across word boundaries and for radii past 31', () => {
    const rnd = prng(8);
    for (let t = 0; t < 80; t++) {
      const W = 1 + Math.floor(rnd() * 100);
      const H = 1 + Math.floor(rnd() * 40);
      const radius = [0, 1, 2, 5, 31, 32, 40][t % 7]!;
      const bits = new Uint8Array(W * H).map(() => (rnd() < 0.03 ? 1 : 0));
      assert.deepEqual(dilateBits(packBits(bits, W, H), W, H, radius), packBits(dilate(bits, W, H, radius), W, H), `case ${t}: ${W}×${H}, radius ${radius}`);
    }
  });

  it('labGrid with a stride computes the cells of the full grid it keeps, bit for bit, and maskGrid reads the same cells', () => {
    const rnd = prng(13);
    for (const [W, H, cell, stride] of [
      [37, 29, 4, 2],
      [64, 48, 4, 2],
      [50, 23, 3, 3],
      [17, 40, 1, 2],
      [33, 33, 4, 1],
    ] as const) {
      const img: Planar = { data: new Float32Array(3 * W * H).map(() => rnd() * 2 - 1), channels: 3, height: H, width: W };
      const full = labGrid(img, cell);
      const part = labGrid(img, cell, stride);
      const mask: Planar = { data: new Float32Array(7 * 5).map(() => rnd()), channels: 1, height: 5, width: 7 };
      const maskFull = maskGrid(mask, W, H, cell);
      const maskPart = maskGrid(mask, W, H, cell, 0.5, stride);
      assert.equal(part.width, Math.ceil(full.width / stride));
      assert.equal(part.height, Math.ceil(full.height / stride));
      for (let sy = 0; sy < part.height; sy++) {
        for (let sx = 0; sx < part.width; sx++) {
          const j = sy * part.width + sx;
          const i = sy * stride * full.width + sx * stride;
          assert.deepEqual([part.L[j], part.a[j], part.b[j]], [full.L[i], full.a[i], full.b[i]], `${W}×${H} cell ${cell} stride ${stride}: cell (${sx}, ${sy})`);
          assert.equal(maskPart[j], maskFull[i]);
        }
      }
    }
  });

  it("cellLightness gives the L* of labGrid's cells, bit for bit", () => {
    const rnd = prng(17);
    for (const [W, H, cell] of [
      [70, 45, 4],
      [33, 19, 3],
    ] as const) {
      const img: Planar = { data: new Float32Array(3 * W * H).map(() => rnd() * 2 - 1), channels: 3, height: H, width: W };
      const gw = Math.ceil(W / cell);
      const gh = Math.ceil(H / cell);
      const which = new Uint8Array(gw * gh).map(() => (rnd() < 0.4 ? 1 : 0));
      const out = new Float32Array(gw * gh).fill(-1);
      cellLightness(img, cell, packBits(which, gw, gh), out);
      const full = labGrid(img, cell);
      which.forEach((set, i) => assert.equal(out[i], set ? full.L[i] : -1, `cell ${i}`));
    }
  });

  it('detectPolarity reads the paper from a sample of the pixels', () => {
    const dark: Planar = { data: new Float32Array(100 * 100).fill(1), channels: 1, height: 100, width: 100 };
    for (let i = 0; i < 100; i++) dark.data[50 * 100 + i] = -1; // a line
    assert.equal(detectPolarity(dark), 'dark-lines');
    assert.equal(detectPolarity({ ...dark, data: dark.data.map((v) => -v) }), 'light-lines');
    assert.equal(detectPolarity({ data: Float32Array.of(-1, -1, 1), channels: 3, height: 1, width: 1 }), 'light-lines');
  });
});
