/** Palette extraction: flat colours come back exactly, with their shares, inside the mask only. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deltaE00 } from '../src/ciede2000.ts';
import { planarToLab } from '../src/lab.ts';
import { extractPalette } from '../src/palette.ts';
import { lab8, labPicture, prng, type Lab } from './fixtures.ts';

const SKIN = lab8(250, 220, 200);
const HAIR = lab8(40, 60, 160);
const SHIRT = lab8(200, 30, 40);

/** 100×40 image: 50% skin, 30% hair, 20% shirt, in vertical bands. */
const bands = labPicture(100, 40, (x): Lab => (x < 50 ? SKIN : x < 80 ? HAIR : SHIRT));

describe('palette extraction', () => {
  it('finds flat colours exactly, with their pixel shares, largest first', () => {
    const p = extractPalette(planarToLab(bands), null, { colours: 8 });
    assert.equal(p.pixels, 4000);
    assert.equal(p.entries.length, 3, 'three flat colours make a palette of three');
    const want: Array<[Lab, number]> = [
      [SKIN, 0.5],
      [HAIR, 0.3],
      [SHIRT, 0.2],
    ];
    want.forEach(([lab, share], i) => {
      const e = p.entries[i];
      assert.ok(deltaE00(e.L, e.a, e.b, ...lab) < 1e-3, `entry ${i} is ${JSON.stringify(e)}`);
      assert.ok(Math.abs(e.share - share) < 1e-12, `entry ${i} share ${e.share}`);
    });
  });

  it('counts only the pixels inside the mask', () => {
    const lab = planarToLab(bands);
    const mask = new Uint8Array(4000);
    for (let y = 0; y < 40; y++) for (let x = 60; x < 100; x++) mask[y * 100 + x] = 1; // hair 20 columns, shirt 20
    const p = extractPalette(lab, mask);
    assert.equal(p.pixels, 1600);
    assert.deepEqual(
      p.entries.map((e) => e.share),
      [0.5, 0.5],
    );
    assert.ok(p.entries.every((e) => deltaE00(e.L, e.a, e.b, ...SKIN) > 10), 'no skin outside the mask');
    assert.deepEqual(extractPalette(lab, new Uint8Array(4000)), { entries: [], pixels: 0 });
  });

  it('groups noisy shades around their colours, deterministically', () => {
    const rnd = prng(11);
    const ROSE: Lab = [60, 20, 10];
    const BLUE: Lab = [40, 10, -40];
    const noisy = labPicture(120, 60, (x): Lab => {
      const [L, a, b] = x < 60 ? ROSE : BLUE;
      return [L + (rnd() - 0.5) * 6, a + (rnd() - 0.5) * 6, b + (rnd() - 0.5) * 6];
    });
    const lab = planarToLab(noisy);
    const p = extractPalette(lab, null, { colours: 2 });
    assert.equal(p.entries.length, 2);
    for (const e of p.entries) assert.ok(Math.abs(e.share - 0.5) < 1e-12, `share ${e.share}`);
    const [first, second] = p.entries;
    const to = (c: Lab) => Math.min(deltaE00(first.L, first.a, first.b, ...c), deltaE00(second.L, second.a, second.b, ...c));
    assert.ok(to(ROSE) < 1, `one centre is the rose colour (${to(ROSE)})`);
    assert.ok(to(BLUE) < 1, `one centre is the blue colour (${to(BLUE)})`);
    assert.deepEqual(extractPalette(lab, null, { colours: 2 }), p, 'the same image gives the same palette');
  });
});
