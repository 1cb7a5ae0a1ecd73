/**
 * Image decode/encode at the pipeline boundary (contract §2.1 steps 1–3 and §6 "Value ranges" /
 * "Output"). sharp (libvips) only decodes and encodes; every pixel op is TypeScript.
 */
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import { PipelineError } from '../errors.ts';
import { planar } from './tensor.ts';
import type { Planar } from './tensor.ts';

/** Container formats accepted from requests (sharp's `metadata().format` names). */
export const SUPPORTED_FORMATS: ReadonlySet<string> = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff']);

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** Largest accepted width·height; checked from the header before any pixel is decoded. */
  maxPixels: number;
}

const f32 = Math.fround;

/** torchvision ToTensor + Normalize(0.5, 0.5) in float32: ((v/max) − 0.5)/0.5. */
const unitToModel = (v: number): number => f32(f32(f32(v) - 0.5) / 0.5);

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Decodes request image bytes (PNG, JPEG, WebP; also GIF first frame and TIFF) into a 3-channel
 * planar image in [−1,1] at native size: x = (v/max − 0.5)/0.5 (contract §6), max = 255, or 65535
 * for 16-bit sources, whose precision is kept (raw `ushort` output in the rgb16 colourspace).
 * Grey and palette images become RGB. Embedded ICC profiles are ignored, like PIL in the app;
 * EXIF orientation is not applied (PIL does not apply it either).
 *
 * Alpha (grey+alpha, RGBA, palette with tRNS) is composited over white, v = c·α + (1 − α):
 * line art is often delivered as a transparent layer with only the strokes opaque, and the
 * "paper" of such a drawing is white; dropping alpha (PIL `convert('RGB')`) would expose the
 * arbitrary colour of transparent pixels, often black, and turn the page into solid ink.
 *
 * The header is read first (`metadata()`, no pixel allocation): unreadable data, an unsupported
 * format or zero/missing dimensions → `INVALID_IMAGE`; width·height > `maxPixels` →
 * `IMAGE_TOO_LARGE`. Both name `field`. sharp also gets `limitInputPixels` as a second guard, and
 * any sharp failure (truncated or corrupt data included) becomes `INVALID_IMAGE` — no raw error
 * escapes.
 */
export async function decodeImage(bytes: Uint8Array, field: string, opts: DecodeOptions): Promise<Planar> {
  const { maxPixels } = opts;
  if (!(maxPixels > 0)) throw new RangeError(`maxPixels must be positive, got ${maxPixels}`);
  const invalid = (reason: string): PipelineError => new PipelineError('INVALID_IMAGE', reason, field);
  const tooLarge = (w: number, h: number): PipelineError =>
    new PipelineError('IMAGE_TOO_LARGE', `image is ${w}×${h} = ${w * h} pixels, over the limit of ${maxPixels}`, field);
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw invalid('empty image data');

  let meta: Metadata;
  try {
    // Header only; the pixel limit is ours to report, so sharp's own check is off here.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw invalid(`unreadable image data (${messageOf(e)})`);
  }
  const { width, height, format, depth } = meta;
  if (!format || !SUPPORTED_FORMATS.has(format)) throw invalid(`unsupported image format ${format ?? 'unknown'}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || !(width > 0) || !(height > 0)) {
    throw invalid(`image has no valid dimensions (${width}×${height})`);
  }
  if (width * height > maxPixels) throw tooLarge(width, height);
  if (depth !== 'uchar' && depth !== 'ushort') throw invalid(`unsupported sample format ${depth}`);
  const is16 = depth === 'ushort';

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, {
      limitInputPixels: Number.isFinite(maxPixels) ? Math.max(1, Math.floor(maxPixels)) : false,
      ignoreIcc: true,
      failOn: 'error',
    })
      .toColourspace(is16 ? 'rgb16' : 'srgb')
      .raw({ depth: is16 ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    const msg = messageOf(e);
    if (/pixel limit/i.test(msg)) throw tooLarge(width, height);
    throw invalid(`could not decode image (${msg})`);
  }

  const { width: w, height: h, channels: ch } = info;
  if (w * h > maxPixels) throw tooLarge(w, h);
  const bytesPer = is16 ? 2 : 1;
  if (ch < 1 || ch > 4 || data.length !== w * h * ch * bytesPer) throw invalid(`unexpected decoded layout ${w}×${h}×${ch}`);
  let samples: Uint8Array | Uint16Array;
  if (is16) {
    const copy = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
    samples = new Uint16Array(copy.buffer, copy.byteOffset, copy.length / 2);
  } else {
    samples = data;
  }
  const max = is16 ? 65535 : 255;
  const hasAlpha = ch === 2 || ch === 4;
  const colours = hasAlpha ? ch - 1 : ch;
  const out = planar(3, h, w);
  const n = w * h;
  for (let i = 0; i < n; i++) {
    const s = i * ch;
    const alpha = hasAlpha ? samples[s + ch - 1] : max;
    for (let c = 0; c < 3; c++) {
      const v = samples[s + (colours === 1 ? 0 : c)];
      out.data[c * n + i] = alpha === max ? unitToModel(v / max) : unitToModel((v / max) * (alpha / max) + (1 - alpha / max));
    }
  }
  return out;
}

/**
 * Planar [−1,1] (3 channels, or 1 replicated) → interleaved RGB8 (HWC), as the app outputs images
 * (contract §G3/§6): clamp to [−1,1], then floor((x+1)·127.5) in float32 — truncation, not rounding,
 * so 0 → 127. NaN → 0.
 */
export function toRgb8(img: Planar): Uint8Array {
  const { channels: C, height: H, width: W } = img;
  if (C !== 3 && C !== 1) throw new RangeError(`toRgb8 needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  const out = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    const plane = (C === 1 ? 0 : c) * n;
    for (let i = 0; i < n; i++) {
      const x = img.data[plane + i];
      const cl = x > 1 ? 1 : x >= -1 ? x : x < -1 ? -1 : NaN;
      out[i * 3 + c] = Number.isNaN(cl) ? 0 : Math.floor(f32(f32(cl + 1) * 127.5));
    }
  }
  return out;
}

/**
 * Interleaved 8-bit samples (HWC, `channels` per pixel) → planar [−1,1] with the same channel count,
 * (v/255 − 0.5)/0.5 in float32 as torchvision does.
 */
export function rgb8ToPlanar(rgb8: Uint8Array, w: number, h: number, channels: number): Planar {
  if (rgb8.length !== w * h * channels) throw new RangeError(`expected ${w * h * channels} bytes, got ${rgb8.length}`);
  const out = planar(channels, h, w);
  const n = w * h;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) out.data[c * n + i] = unitToModel(rgb8[i * channels + c] / 255);
  }
  return out;
}

/**
 * Encodes interleaved RGB8 (HWC) as PNG with fixed settings (compression 6, no adaptive filtering,
 * no palette, no metadata) so the same pixels always give the same bytes (cacheable, hashable).
 */
export async function encodePngRgb8(rgb8: Uint8Array, w: number, h: number): Promise<Buffer> {
  if (rgb8.length !== w * h * 3) throw new RangeError(`expected ${w * h * 3} bytes, got ${rgb8.length}`);
  return sharp(rgb8, { raw: { width: w, height: h, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false, progressive: false })
    .toBuffer();
}

/**
 * A small WebP preview (the longer side at most `maxSide`, never enlarged) of a [−1,1] image, for
 * dashboards and review tools: a 1536² output is a few megabytes as PNG, tens of kilobytes here.
 */
export function encodeWebpPreview(img: Planar, maxSide = 256): Promise<Buffer> {
  return sharp(toRgb8(img), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true, kernel: 'lanczos3' })
    .webp({ quality: 82, effort: 4 })
    .toBuffer();
}

/** Planar [−1,1] → deterministic PNG, via {@link toRgb8} (contract §6 "Output"). */
export function encodePng(img: Planar): Promise<Buffer> {
  return encodePngRgb8(toRgb8(img), img.width, img.height);
}
