import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeImage, encodePng, encodePngRgb8, rgb8ToPlanar, toRgb8 } from '../src/image/codec.ts';
import { at, planar } from '../src/image/tensor.ts';
import type { Planar } from '../src/image/tensor.ts';
import { PipelineError } from '../src/errors.ts';
import type { PipelineErrorCode } from '../src/errors.ts';

const opts = { maxPixels: 4096 * 4096 };
/** (v/max - 0.5)/0.5 */
const m = (v: number, max = 255): number => (v / max - 0.5) / 0.5;

/** Expects `pixels` (per pixel [r,g,b] in [-1,1]) in a 3-channel planar image, row-major. */
function expectPixels(img: Planar, w: number, h: number, pixels: Array<[number, number, number]>, tol = 1e-6): void {
  assert.equal(img.channels, 3);
  assert.equal(img.width, w);
  assert.equal(img.height, h);
  pixels.forEach((rgb, i) => {
    for (let c = 0; c < 3; c++) {
      const v = img.data[c * w * h + i];
      assert.ok(Math.abs(v - rgb[c]) <= tol, `pixel ${i} channel ${c}: ${v} vs ${rgb[c]}`);
    }
  });
}

const rejects = (code: PipelineErrorCode, field: string, re?: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof PipelineError, `not a PipelineError: ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.field, field);
  if (re) assert.match(e.message, re);
  return true;
};

// CRC-32 (IEEE) for PNG chunks; zlib.crc32 is not in Node 20.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A copy of `png` whose IHDR claims width×height (CRC fixed up). */
function patchIhdr(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  assert.equal(out.toString('latin1', 12, 16), 'IHDR');
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

describe('decodeImage', () => {
  it('8-bit RGB PNG → (v/255 - 0.5)/0.5, float32 like torchvision', async () => {
    const png = await sharp(Buffer.from([0, 128, 255, 10, 20, 30]), { raw: { width: 2, height: 1, channels: 3 } }).png().toBuffer();
    const img = await decodeImage(png, 'sketch', opts);
    expectPixels(img, 2, 1, [[-1, m(128), 1], [m(10), m(20), m(30)]]);
    assert.equal(img.data[1 * 2 + 0], Math.fround(Math.fround(Math.fround(128 / 255) - 0.5) / 0.5));
  });

  it('grey PNG → replicated to 3 channels', async () => {
    const png = await sharp(Buffer.from([0, 128, 255, 64]), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 1);
    const img = await decodeImage(png, 'sketch', opts);
    expectPixels(img, 2, 2, [-1, m(128), 1, m(64)].map((v) => [v, v, v] as [number, number, number]));
  });

  it('grey+alpha PNG → composited over white', async () => {
    // (grey, alpha): (0,255) (128,0) (255,128) (64,255)
    const png = await sharp(Buffer.from([0, 255, 128, 0, 255, 128, 64, 255]), { raw: { width: 2, height: 2, channels: 2 } })
      .toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 2);
    const img = await decodeImage(png, 'reference', opts);
    expectPixels(img, 2, 2, [-1, 1, 1, m(64)].map((v) => [v, v, v] as [number, number, number]));
  });

  it('RGBA PNG: transparent → white, half alpha blends with white', async () => {
    const px = [255, 0, 0, 0, /**/ 0, 255, 0, 255, /**/ 0, 0, 255, 128, /**/ 10, 20, 30, 255];
    const png = await sharp(Buffer.from(px), { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
    const img = await decodeImage(png, 'reference', opts);
    const a = 128 / 255;
    const half = 2 * (1 - a) - 1; // v = 0·a + (1 - a)
    expectPixels(img, 2, 2, [[1, 1, 1], [-1, 1, -1], [half, half, 1], [m(10), m(20), m(30)]]);
  });

  it('palette PNG (with and without tRNS)', async () => {
    const pal = await sharp(Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]), { raw: { width: 2, height: 2, channels: 3 } })
      .png({ palette: true, dither: 0 }).toBuffer();
    assert.ok((await sharp(pal).metadata()).isPalette, 'is a palette PNG');
    expectPixels(await decodeImage(pal, 'sketch', opts), 2, 2, [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [m(10), m(20), m(30)]]);
    const palA = await sharp(Buffer.from([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 10, 20, 30, 255]), { raw: { width: 2, height: 2, channels: 4 } })
      .png({ palette: true, dither: 0 }).toBuffer();
    assert.ok((await sharp(palA).metadata()).isPalette, 'is a palette PNG');
    expectPixels(await decodeImage(palA, 'sketch', opts), 2, 2, [[1, -1, -1], [1, 1, 1], [-1, -1, 1], [m(10), m(20), m(30)]]);
  });

  it('16-bit grey, RGB and RGBA PNGs keep 16-bit precision', async () => {
    const g16 = await sharp(new Uint16Array([0, 1000, 65535, 32768]), { raw: { width: 2, height: 2, channels: 1 } })
      .toColourspace('grey16').png().toBuffer();
    assert.equal((await sharp(g16).metadata()).depth, 'ushort');
    const M = 65535;
    expectPixels(await decodeImage(g16, 'sketch', opts), 2, 2,
      [0, 1000, 65535, 32768].map((v) => [m(v, M), m(v, M), m(v, M)] as [number, number, number]));
    // 1000/65535 would be 771/65535 (3/255) after an 8-bit round trip: that would be off by 7e-3
    const rgb16 = await sharp(new Uint16Array([0, 1000, 65535, 32768, 1, 2]), { raw: { width: 2, height: 1, channels: 3 } })
      .toColourspace('rgb16').png().toBuffer();
    expectPixels(await decodeImage(rgb16, 'sketch', opts), 2, 1, [[m(0, M), m(1000, M), m(65535, M)], [m(32768, M), m(1, M), m(2, M)]]);
    const rgba16 = await sharp(new Uint16Array([0, 1000, 65535, 65535, 5, 6, 7, 0, 0, 0, 0, 32768]), { raw: { width: 3, height: 1, channels: 4 } })
      .toColourspace('rgb16').png().toBuffer();
    const a = 32768 / M;
    const half = 2 * (1 - a) - 1;
    expectPixels(await decodeImage(rgba16, 'sketch', opts), 3, 1, [[m(0, M), m(1000, M), 1], [1, 1, 1], [half, half, half]]);
  });

  it('JPEG and lossless WebP', async () => {
    const flat = Buffer.alloc(8 * 8 * 3);
    for (let i = 0; i < 64; i++) flat.set([200, 100, 50], i * 3);
    const jpg = await sharp(flat, { raw: { width: 8, height: 8, channels: 3 } }).jpeg({ quality: 100 }).toBuffer();
    const j = await decodeImage(jpg, 'reference', opts);
    expectPixels(j, 8, 8, [[m(200), m(100), m(50)]], 3 / 127.5);
    const webp = await sharp(Buffer.from([1, 2, 3, 250, 251, 252]), { raw: { width: 2, height: 1, channels: 3 } }).webp({ lossless: true }).toBuffer();
    expectPixels(await decodeImage(webp, 'reference', opts), 2, 1, [[m(1), m(2), m(3)], [m(250), m(251), m(252)]]);
  });

  it('corrupt, empty, truncated and unsupported data → INVALID_IMAGE naming the field', async () => {
    await assert.rejects(decodeImage(Buffer.from('definitely not an image'), 'reference', opts), rejects('INVALID_IMAGE', 'reference'));
    await assert.rejects(decodeImage(new Uint8Array(0), 'reference', opts), rejects('INVALID_IMAGE', 'reference'));
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer();
    await assert.rejects(decodeImage(png.subarray(0, png.length - 30), 'sketch', opts), rejects('INVALID_IMAGE', 'sketch'));
    // header claims 3000×3000 (under the limit) but the data is for 64×64
    await assert.rejects(decodeImage(patchIhdr(png, 3000, 3000), 'sketch', opts), rejects('INVALID_IMAGE', 'sketch'));
    await assert.rejects(decodeImage(patchIhdr(png, 0, 64), 'sketch', opts), rejects('INVALID_IMAGE', 'sketch'));
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await assert.rejects(decodeImage(svg, 'background', opts), rejects('INVALID_IMAGE', 'background', /format/));
  });

  it('a header claiming 20000×20000 → IMAGE_TOO_LARGE before any pixel is decoded', async () => {
    const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } }).png().toBuffer();
    const huge = patchIhdr(png, 20000, 20000);
    assert.equal((await sharp(huge, { limitInputPixels: false }).metadata()).width, 20000);
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    await assert.rejects(decodeImage(huge, 'reference', { maxPixels: 16_777_216 }),
      rejects('IMAGE_TOO_LARGE', 'reference', /20000×20000.*16777216/));
    assert.ok(performance.now() - t0 < 2000, 'rejected from the header alone');
    // 20000² RGB would be 1.2 GB (4.8 GB as float32)
    assert.ok(process.memoryUsage().rss - rss < 200 * 1024 * 1024, 'no pixel buffer allocated');
  });

  it('the limit is inclusive: width·height == maxPixels decodes', async () => {
    const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#000' } }).png().toBuffer();
    assert.equal((await decodeImage(png, 'sketch', { maxPixels: 12 })).data.length, 36);
    await assert.rejects(decodeImage(png, 'sketch', { maxPixels: 11 }), rejects('IMAGE_TOO_LARGE', 'sketch', /4×3/));
  });
});

describe('toRgb8 / encode', () => {
  it('floor((clamp(x)+1)·127.5): -1→0, 1→255, 0→127, truncates, clamps', () => {
    const xs = [-1, 1, 0, 0.5, 0.999, -3, 2, NaN];
    // 0.5 → 191.25 → 191; 0.999 → 254.87 → 254
    const img: Planar = { data: Float32Array.from(xs), channels: 1, height: 1, width: xs.length };
    const rgb = toRgb8(img);
    const want = [0, 255, 127, 191, 254, 0, 255, 0];
    assert.deepEqual(Array.from(rgb), want.flatMap((v) => [v, v, v]));
  });
  it('interleaves planar channels into HWC', () => {
    const p = planar(3, 1, 2);
    p.data.set([-1, 1, /* G */ 0, 1, /* B */ 1, -1]);
    assert.deepEqual(Array.from(toRgb8(p)), [0, 127, 255, 255, 255, 0]);
  });
  it('rgb8ToPlanar is the torchvision normalisation', () => {
    const p = rgb8ToPlanar(Uint8Array.from([0, 128, 255, 10, 20, 30]), 2, 1, 3);
    assert.equal(p.data[at(p, 0, 0, 0)], -1);
    assert.equal(p.data[at(p, 2, 0, 0)], 1);
    assert.ok(Math.abs(p.data[at(p, 1, 0, 0)] - m(128)) < 1e-7, 'G');
    assert.ok(Math.abs(p.data[at(p, 2, 0, 1)] - m(30)) < 1e-7, 'B');
    assert.throws(() => rgb8ToPlanar(new Uint8Array(5), 2, 1, 3), RangeError);
  });
  it('encodePng is deterministic and round-trips through decodeImage', async () => {
    const p = planar(3, 5, 7);
    for (let i = 0; i < p.data.length; i++) p.data[i] = Math.sin(i) * 1.1;
    const a = await encodePng(p);
    const b = await encodePng({ ...p, data: Float32Array.from(p.data) });
    assert.ok(a.equals(b), 'byte-identical');
    assert.equal(a.toString('latin1', 1, 4), 'PNG');
    const back = await decodeImage(a, 'x', opts);
    const rgb = toRgb8(p);
    for (let i = 0; i < 35; i++) {
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(back.data[c * 35 + i] - m(rgb[i * 3 + c])) < 1e-6, `px ${i}`);
    }
    const c = await encodePngRgb8(rgb, 7, 5);
    assert.ok(c.equals(a), 'encodePngRgb8 gives the same bytes');
  });
});
