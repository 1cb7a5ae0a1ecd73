/**
 * sha256 as the farm writes it everywhere: lowercase hex, of pack files, input images (lineage),
 * idempotency keys and stored token hashes. This module imports nothing but Node, so any package
 * takes it as `@celfarm/pipeline/hash` without loading ONNX Runtime or sharp.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of `data` (bytes, or a string as UTF-8), lowercase hex. */
export const sha256Hex = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** sha256 of a file, streamed, so a multi-GB graph passes through a few chunks of memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A step of a stream pipeline that passes chunks on unchanged, hashing and counting them. */
export interface Sha256Tap {
  /** Put it between a source and a sink: `pipeline(source, tap.pass, sink)`. */
  pass: (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Uint8Array>;
  /** Bytes passed so far. */
  readonly bytes: number;
  /** sha256 of everything passed, lowercase hex; call once, after the pipeline finished. */
  digest(): string;
}

/** A {@link Sha256Tap}: hashes a transfer on its way to disk, without a second read. */
export function sha256Tap(): Sha256Tap {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    async *pass(source) {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    get bytes() {
      return bytes;
    },
    digest: () => hash.digest('hex'),
  };
}
