/**
 * What a shot's frame records add up to when a round ends, for the worker's finalize and the farm
 * events: counts per state, the failures named, and the shot's outcome against its failed-frame
 * allowance. (What the views show while it runs — counts, progress, time left, frames a retry
 * could fix — comes from the stored tally: tally.ts.)
 */
import { countsOf, tallyOf } from './tally.ts';
import { type ErrorInfo, type FrameRecord, type FrameState, type ShotRecord } from './records.ts';

/** Failed frames named in a summary; the rest are counted. */
const MAX_LISTED_FAILURES = 5;

/** Frames per state (the tally's counts, over whole records). */
export const frameCounts = (frames: readonly FrameRecord[]): Record<FrameState, number> => countsOf(tallyOf(frames));

/** `frame 2 INVALID_IMAGE (frames[1]): …; frame 5 …; and 3 more`: the first few, by frame number. */
export function describeFailures(frames: readonly FrameRecord[], max = MAX_LISTED_FAILURES): string {
  const listed = [...frames]
    .sort((a, b) => a.frame - b.frame)
    .slice(0, max)
    .map((f) => `frame ${f.frame} ${f.error ? `${f.error.code}${f.error.field ? ` (${f.error.field})` : ''}: ${f.error.message}` : f.state}`);
  const more = frames.length > max ? `; and ${frames.length - max} more` : '';
  return `${listed.join('; ')}${more}`;
}

export interface ShotOutcome {
  state: 'completed' | 'failed';
  /** FRAMES_FAILED with the failed frames and their causes, when the shot failed. */
  error?: ErrorInfo;
}

/**
 * The outcome of a round that has finished: `failed` when the share of frames that did not
 * complete exceeds the shot's allowance, else `completed`. Counted against frameCount, so a
 * frame record that went missing counts as failed.
 */
export function shotOutcome(shot: Pick<ShotRecord, 'frameCount' | 'failedFrameShare'>, frames: readonly FrameRecord[]): ShotOutcome {
  const unfinished = frames.filter((f) => f.state !== 'completed');
  const failedCount = shot.frameCount - (frames.length - unfinished.length);
  if (failedCount / Math.max(1, shot.frameCount) <= shot.failedFrameShare) return { state: 'completed' };
  return {
    state: 'failed',
    error: {
      code: 'FRAMES_FAILED',
      message: `${failedCount} of ${shot.frameCount} frames failed (allowed share ${shot.failedFrameShare}): ${describeFailures(unfinished)}`,
    },
  };
}
