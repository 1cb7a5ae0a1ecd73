/**
 * The checks every submitted image goes through, whichever way it arrived (multipart, an
 * existing object, an upload): how many frames, how big, whether it decodes, and whether the
 * frames' file names can name their outputs. Each names the request field it is about, and a
 * frame's file too.
 */
import { fileNameSchema, frameLabel, namingFile, numberedFileName } from '@celfarm/jobs/identity';
import { PipelineError } from '@celfarm/pipeline/errors';
import { decodeImage } from '@celfarm/pipeline/image/codec';
import { outputFileName } from '@celfarm/storage/keys';
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

/**
 * Full decode (header first): PipelineError INVALID_IMAGE / IMAGE_TOO_LARGE naming `field`, and
 * in its message the frame's file: `frames[1] (sh010_0002.png): unreadable image data …`. The
 * image's size when it decodes (the first frame's sets the output size).
 */
export async function checkDecodes(bytes: Uint8Array, field: string, maxPixels: number, fileName?: string): Promise<{ width: number; height: number }> {
  try {
    const { width, height } = await decodeImage(bytes, field, { maxPixels });
    return { width, height };
  } catch (e) {
    // The error is ours alone (just thrown): it keeps its code, field and status, and names the file.
    if (e instanceof PipelineError) e.message = namingFile(e.message, field, fileName);
    throw e;
  }
}

/**
 * The frames' file names, checked and completed: each must be a name, not a path (identity.ts);
 * an empty one becomes the frame's number (`00001.png`). Two frames whose outputs would get one
 * name — names that differ only in case or extension, `a.png` and `A.jpg` — are refused, naming
 * both: the outputs are named after the inputs, and a studio's Mac or Windows disk would merge
 * them. `field(i)` is the request field errors name for frame i; `describe(i)` how their messages
 * name it (default: the field and its file name, `frames[1] (sh010_0002.png)`).
 */
export function checkFileNames(names: readonly string[], field: (i: number) => string, describe?: (i: number) => string): string[] {
  const seen = new Map<string, number>();
  const checked = names.map((given, i) => {
    const name = given === '' ? numberedFileName(i + 1) : given;
    const parsed = fileNameSchema.safeParse(name);
    if (!parsed.success) throw badRequest(field(i), `file name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return name;
  });
  const label = describe ?? ((i: number) => frameLabel(field(i), checked[i]));
  checked.forEach((name, i) => {
    const output = outputFileName(i + 1, name);
    const first = seen.get(output.toLowerCase());
    if (first !== undefined) {
      throw badRequest(
        field(i),
        `${label(i)} and ${label(first)} would both be written as outputs/${output}: ` +
          'the frames of a shot need file names that differ in more than case or extension',
        'DUPLICATE_FILE_NAME',
      );
    }
    seen.set(output.toLowerCase(), i);
  });
  return checked;
}
