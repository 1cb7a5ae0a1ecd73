/**
 * A shot's images as resources of the API — `/v1/shots/:id/frames/:frame/{input,output,preview}`
 * and `/v1/shots/:id/inputs/{reference,background}` — for when the API, not the object store,
 * hands them to clients (S3_PRESIGN, core/object-urls.ts). Paths and small stream helpers; the
 * service resolves which object a path means from the shot's record, never from the path.
 */
import type { Readable } from 'node:stream';
import { badRequest } from '../core/api-error.ts';

export type FrameFileKind = 'input' | 'output' | 'preview';
export type InputName = 'reference' | 'background';

/** An earlier take's images: `/v1/shots/:id/frames/:frame/takes/:round/{output,preview}`. */
export type TakeFileKind = 'take-output' | 'take-preview';

export type ShotFile = { kind: FrameFileKind; frame: number } | { kind: TakeFileKind; frame: number; round: number } | { kind: InputName };

export const FRAME_FILE_KINDS: readonly FrameFileKind[] = ['input', 'output', 'preview'];
export const INPUT_NAMES: readonly InputName[] = ['reference', 'background'];

/**
 * A number from a path segment: digits only (no sign, exponent or spaces), `min` to 1,000,000;
 * otherwise 400 naming `field`, with `rule` as the message.
 */
function pathNumber(value: string, min: number, field: string, rule: string): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= 1_000_000)) throw badRequest(field, rule);
  return n;
}

/** A frame number from the path (`…/frames/:frame…`): 1-based. */
export const parseFrame = (value: string): number => pathNumber(value, 1, 'frame', 'a frame number, 1-based');

/** A retry round from the path (`…/takes/:round/…`): 0 or more. */
export const parseRound = (value: string): number => pathNumber(value, 0, 'round', 'a retry round number, 0 or more');

/** The file's path on the API (relative: clients resolve it against the API's address). */
export function shotFilePath(shotId: string, file: ShotFile): string {
  const shot = `/v1/shots/${encodeURIComponent(shotId)}`;
  if ('round' in file) return `${shot}/frames/${file.frame}/takes/${file.round}/${file.kind.slice('take-'.length)}`;
  return 'frame' in file ? `${shot}/frames/${file.frame}/${file.kind}` : `${shot}/inputs/${file.kind}`;
}

/** The submit field an input file answers to: `reference`, `background`, `frames[i]` (0-based). */
export function inputField(file: ShotFile): string {
  return 'frame' in file ? `frames[${file.frame - 1}]` : file.kind;
}

/** The first bytes of a stream, left in it (unshifted) for whoever reads it next. */
export function peek(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (bytes: Buffer) => {
      stream.off('readable', onReadable).off('end', onEnd).off('error', onError);
      resolve(bytes);
    };
    const onReadable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      stream.unshift(chunk);
      done(chunk);
    };
    const onEnd = () => done(Buffer.alloc(0));
    const onError = (e: Error) => {
      stream.off('readable', onReadable).off('end', onEnd);
      reject(e);
    };
    stream.on('readable', onReadable).once('end', onEnd).once('error', onError);
  });
}
