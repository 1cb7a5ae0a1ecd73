/**
 * The checks every submitted image goes through, whichever way it arrived (multipart, an
 * existing object, an upload): how many frames, how big, and whether it decodes. Each names the
 * request field it is about.
 */
import { decodeImage } from '@celfarm/pipeline/image/codec';
import { ApiError, badRequest, tooLarge } from '../core/api-error.ts';
import { LIMITS } from '../core/limits.ts';

/** Decodes run on libuv's pool (sharp); a few at a time keeps memory bounded. */
export const DECODE_CONCURRENCY = 4;
/** Object-store requests in flight per shot operation. */
export const IO_CONCURRENCY = 16;

export function checkFrameCount(n: number, field: string, maxFrames: number): void {
  if (n > maxFrames) throw badRequest(field, `${n} frames; at most ${maxFrames} per shot`);
}

export function checkObjectSize(size: number, field: string, key: string): void {
  if (size === 0) throw new ApiError(400, 'INVALID_IMAGE', `${key} is empty`, field);
  if (size > LIMITS.fileBytes) throw tooLarge(field, `${key} is ${size} bytes, over the limit of ${LIMITS.fileBytes}`);
}

/** Full decode (header first): PipelineError INVALID_IMAGE / IMAGE_TOO_LARGE naming `field`. */
export async function checkDecodes(bytes: Uint8Array, field: string, maxPixels: number): Promise<void> {
  await decodeImage(bytes, field, { maxPixels });
}
