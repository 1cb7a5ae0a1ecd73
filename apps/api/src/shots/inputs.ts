/**
 * Shot inputs at the HTTP edge: reading a multipart submit into memory (with limits that name
 * the field), and small helpers about image objects. Nothing here stores anything.
 */
import type { Multipart } from '@fastify/multipart';
import { ApiError, badRequest, tooLarge } from '../core/api-error.ts';

/** A multipart submit: the `request` JSON and the image bytes, frames in order. */
export interface ShotForm {
  request?: string;
  reference?: Uint8Array;
  background?: Uint8Array;
  frames: Uint8Array[];
  /** The file name each frames part was sent with ('' when none), as sent: checked at intake. */
  frameNames: string[];
}

export interface FormLimits {
  fileBytes: number;
  totalBytes: number;
  requestBytes: number;
  maxFrames: number;
}

const mib = (n: number) => `${Math.round(n / (1024 * 1024))} MiB`;

/**
 * Reads every part of a multipart submit. Fields: `request` (JSON text, or a JSON file), files
 * `reference`, `background` and one `frames` part per frame, in frame order. Errors name the
 * part: `frames[2]` is the third frames part.
 */
export async function readShotForm(parts: AsyncIterable<Multipart>, limits: FormLimits): Promise<ShotForm> {
  const form: ShotForm = { frames: [], frameNames: [] };
  let total = 0;
  const take = async (part: Multipart, field: string): Promise<Buffer> => {
    let bytes: Buffer;
    if (part.type === 'field') {
      if (part.valueTruncated) throw tooLarge(field, `over the limit of ${mib(limits.requestBytes)}`);
      bytes = Buffer.from(String(part.value), 'utf8');
    } else {
      try {
        bytes = await part.toBuffer();
      } catch (e) {
        if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(field, `file over the limit of ${mib(limits.fileBytes)}`);
        throw e;
      }
    }
    total += bytes.length;
    if (total > limits.totalBytes) throw tooLarge(field, `the upload is over the limit of ${mib(limits.totalBytes)} in all`);
    return bytes;
  };
  for await (const part of parts) {
    const name = part.fieldname;
    if (name === 'request') {
      if (form.request !== undefined) throw badRequest('request', 'given twice');
      const bytes = await take(part, 'request');
      if (bytes.length > limits.requestBytes) throw tooLarge('request', `over the limit of ${mib(limits.requestBytes)}`);
      form.request = bytes.toString('utf8');
    } else if (name === 'reference' || name === 'background') {
      if (part.type !== 'file') throw badRequest(name, 'must be a file part');
      if (form[name] !== undefined) throw badRequest(name, 'given twice');
      form[name] = await take(part, name);
    } else if (name === 'frames' || name === 'frames[]') {
      const field = `frames[${form.frames.length}]`;
      if (part.type !== 'file') throw badRequest(field, 'must be a file part');
      if (form.frames.length >= limits.maxFrames) throw badRequest('frames', `at most ${limits.maxFrames} frames per shot`);
      form.frames.push(await take(part, field));
      form.frameNames.push(part.filename ?? '');
    } else {
      throw badRequest(name, 'unknown part; expected request, reference, background or frames');
    }
  }
  return form;
}

/** The content type of image bytes, from their signature (keys say .png whatever the format). */
export function sniffContentType(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 12));
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  if (b.length >= 6 && b.toString('latin1', 0, 4) === 'GIF8') return 'image/gif';
  if (b.length >= 4 && (b.toString('latin1', 0, 4) === 'II*\0' || b.toString('latin1', 0, 4) === 'MM\0*')) return 'image/tiff';
  return 'application/octet-stream';
}

/** Image objects a `frames.prefix` picks up. */
export const IMAGE_KEY = /\.(png|jpe?g|webp)$/i;

/**
 * Refuses keys outside `scope` (the project's prefix) and keys with `.`/`..`/empty segments,
 * which some S3-compatible stores normalise into another place.
 */
export function checkKeyScope(key: string, scope: string, field: string): void {
  if (!key.startsWith(scope)) throw new ApiError(400, 'KEY_OUTSIDE_PROJECT', `${key} is not under the project's prefix ${scope}`, field);
  const rest = key.slice(scope.length);
  if (rest.split('/').some((seg, i, all) => seg === '.' || seg === '..' || (seg === '' && i < all.length - 1))) {
    throw badRequest(field, `${key} has an empty, "." or ".." path segment`);
  }
}
