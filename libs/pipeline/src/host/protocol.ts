/** Messages between {@link PipelineHost} (caller's thread) and the inference thread. */
import type { Progress, Stage } from '../colorize.ts';
import type { Box } from '../image/index.ts';
import type { Planar } from '../image/tensor.ts';
import type { ResolvedSettings } from '../settings-schema.ts';

export interface HostInit {
  packDir: string;
  providers?: string[];
  intraOpThreads?: number;
  interOpThreads?: number;
  verifyHashes?: boolean;
  /** Open every graph at start-up (warm-up) instead of on first use. */
  warmup?: boolean;
  /** Int32Array over a SharedArrayBuffer: slot 0 holds the id of the job to cancel. */
  cancel: SharedArrayBuffer;
}

/** Jobs carry settings resolved before they were sent (settings.ts); the thread takes them as given. */
export type HostRequest =
  | { type: 'colorize'; id: number; settings: ResolvedSettings; sketch: Planar; reference?: Planar; background?: Planar }
  | { type: 'prepare'; id: number; settings: ResolvedSettings; reference?: Planar; background?: Planar }
  | { type: 'frame'; id: number; settings: ResolvedSettings; context: Uint8Array; sketch: Planar }
  | { type: 'close' };

export interface FrameOutput {
  images: Planar[];
  box: Box;
  sketchMask: Planar | null;
  seed: number;
  timings: Partial<Record<Stage, number>>;
}

export interface PrepareOutput {
  key: string;
  context: Uint8Array;
  referenceMask: Planar | null;
  seconds: number;
}

export type HostEvent =
  | { type: 'ready'; provider: string; pack: string; licence: { name: string; commercialUse: boolean } }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'progress'; id: number; progress: Progress }
  | { type: 'result'; id: number; frame?: FrameOutput; prepare?: PrepareOutput }
  | { type: 'error'; id: number; error: SerializedError };

export interface SerializedError {
  name: string;
  code?: string;
  field?: string;
  message: string;
}
