/**
 * Image I/O of the worker: input objects fetched from the object store, hashed for lineage and
 * decoded (on the main thread, so it overlaps the inference thread's work); masks encoded as
 * deterministic greyscale PNGs.
 */
import { decodeImage, encodePngRgb8, PipelineError, sha256Hex, type Planar } from '@celfarm/pipeline';
import type { ObjectStore } from '@celfarm/storage';

export interface InputImage {
  key: string;
  /** sha256 hex of the object's bytes (lineage). */
  sha256: string;
  image: Planar;
}

/** The bytes of `key`; a missing object is bad input (MISSING_INPUT naming `field`), not a retry. */
export async function fetchInput(objects: ObjectStore, key: string, field: string): Promise<Uint8Array> {
  const bytes = await objects.get(key);
  if (!bytes) throw new PipelineError('MISSING_INPUT', `object ${key} does not exist`, field);
  return bytes;
}

/**
 * Fetches, hashes and decodes one input image. `onHash` receives the sha256 before decoding, so
 * a corrupt image still leaves its hash in the lineage.
 */
export async function readInputImage(
  objects: ObjectStore,
  key: string,
  field: string,
  maxPixels: number,
  onHash?: (sha256: string) => void,
): Promise<InputImage> {
  const bytes = await fetchInput(objects, key, field);
  const sha256 = sha256Hex(bytes);
  onHash?.(sha256);
  return { key, sha256, image: await decodeImage(bytes, field, { maxPixels }) };
}

/** A [0, 1] mask (first channel) as an 8-bit greyscale-looking RGB PNG: 0 → black, 1 → white. */
export function encodeMaskPng(mask: Planar): Promise<Buffer> {
  const n = mask.width * mask.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = mask.data[i]!;
    const g = Number.isNaN(v) ? 0 : Math.round(Math.min(1, Math.max(0, v)) * 255);
    rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = g;
  }
  return encodePngRgb8(rgb, mask.width, mask.height);
}
