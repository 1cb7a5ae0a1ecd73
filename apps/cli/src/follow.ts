/**
 * Following shots until they finish (a progress bar per shot: frames done/total, the sampler
 * steps of the active frames, ETA) and downloading their outputs. A poll reads the shot view
 * only (counts and active frames): it costs the same for 2 frames or 2000.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { lastSegment, numberedFileName } from '@celfarm/contract';
import { ApiError, TERMINAL_STATES, type CelfarmApi, type FrameView, type ShotView } from './api.ts';
import { duration } from './format.ts';

/** A failure of the command that is not bad input (exit status 1). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FollowOptions {
  /** Poll period in ms (default 500). */
  pollMs?: number;
  /** Give up after this many ms (default: never). */
  timeoutMs?: number;
  /** No progress output at all. */
  quiet?: boolean;
  /** Where progress bars go (default stderr); bars only when it is a TTY. */
  stream?: NodeJS.WriteStream;
  /** Where progress lines go without a TTY (default: the stream). */
  log?: (text: string) => void;
}

/** Consecutive failed polls (API unreachable or 5xx) tolerated before giving up. */
const MAX_POLL_ERRORS = 20;

const done = (v: ShotView) => v.counts.completed;

/** `#3 12/20 #4 5/20`: the sampler position of the active frames (at most three). */
export function activeSteps(v: ShotView): string {
  const parts = v.active.slice(0, 3).map((f) => `#${f.frame} ${f.step !== undefined && f.steps ? `${f.step}/${f.steps}` : (f.stage ?? 'starting')}`);
  const more = Math.max(v.counts.active, v.active.length) - parts.length;
  if (more > 0) parts.push(`+${more}`);
  return parts.join(' ') || '-';
}

/** One line describing a shot's progress (used when stderr is not a TTY, and for the final summary). */
export function progressLine(v: ShotView): string {
  const failed = v.counts.failed;
  return `shot ${v.id} ${v.state}: ${done(v)}/${v.frameCount} frames${failed ? `, ${failed} failed` : ''} | steps ${activeSteps(v)} | ETA ${duration(v.etaSeconds)}`;
}

const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/** Polls the shots until every one is completed, failed or cancelled; returns their last views, in order. */
export async function followShots(api: CelfarmApi, ids: string[], opts: FollowOptions = {}): Promise<ShotView[]> {
  const stream = opts.stream ?? process.stderr;
  const pollMs = opts.pollMs ?? 500;
  const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
  const tty = !opts.quiet && stream.isTTY === true;
  const log = opts.log ?? ((t: string) => void stream.write(t));
  const multi = tty
    ? new MultiBar(
        {
          format: '{shot} {state} [{bar}] {value}/{total} frames | steps {steps} | ETA {remaining}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream,
          barsize: 24,
        },
        Presets.shades_classic,
      )
    : null;
  const bars = new Map<string, SingleBar>();
  const lastLine = new Map<string, string>();
  const views = new Map<string, ShotView>();
  let errors = 0;
  try {
    for (;;) {
      for (const id of ids) {
        const prev = views.get(id);
        if (prev && TERMINAL_STATES.includes(prev.state)) continue;
        let v: ShotView;
        try {
          v = await api.shot(id);
          errors = 0;
        } catch (e) {
          // A restarting API or a network blip must not end a long wait; bad requests (404, 401, 403) do.
          if (e instanceof ApiError && (e.status === 0 || e.status >= 500) && ++errors < MAX_POLL_ERRORS) continue;
          throw e;
        }
        views.set(id, v);
        const payload = { shot: v.id, state: v.state.padEnd(9), steps: activeSteps(v), remaining: duration(v.etaSeconds) };
        if (multi) {
          const bar = bars.get(id);
          if (bar) {
            bar.setTotal(v.frameCount);
            bar.update(done(v), payload);
          } else bars.set(id, multi.create(v.frameCount, done(v), payload));
        } else if (!opts.quiet) {
          // One line per change of state or of finished frames (steps alone would flood a log).
          const line = `shot ${v.id} ${v.state}: ${done(v)}/${v.frameCount} frames${v.counts.failed ? `, ${v.counts.failed} failed` : ''}`;
          if (lastLine.get(id) !== line) {
            log(`${progressLine(v)}\n`);
            lastLine.set(id, line);
          }
        }
      }
      if (ids.every((id) => TERMINAL_STATES.includes(views.get(id)?.state ?? ''))) break;
      if (Date.now() >= deadline) {
        const open = ids.filter((id) => !TERMINAL_STATES.includes(views.get(id)?.state ?? ''));
        throw new CommandError('TIMEOUT', `gave up waiting after ${duration((opts.timeoutMs ?? 0) / 1000)}: ${open.map((id) => `${id} is ${views.get(id)?.state ?? 'unknown'}`).join(', ')}`);
      }
      await sleep(pollMs);
    }
  } finally {
    multi?.stop();
  }
  return ids.map((id) => views.get(id)!);
}

/**
 * The file a frame's output is written to: the last segment of its key, named after the input
 * frame (`sh010_0001.jpg` → `sh010_0001.png`), else the frame number (`00001.png`).
 */
export function outputName(f: Pick<FrameView, 'frame' | 'output'>): string {
  const last = f.output ? lastSegment(f.output) : undefined;
  return last && last !== '.' && last !== '..' ? last : numberedFileName(f.frame);
}

export interface DownloadResult {
  files: string[];
  /** Frames without an output (not completed): `#3 sh010_0003.png failed`, … */
  missing: string[];
}

/** Writes the output of every completed one of `frames` to `outDir`, named by {@link outputName} (four at a time). */
export async function downloadOutputs(api: CelfarmApi, frames: readonly FrameView[], outDir: string): Promise<DownloadResult> {
  await mkdir(outDir, { recursive: true });
  const ready = frames.filter((f) => f.state === 'completed' && f.outputUrl);
  const missing = frames.filter((f) => !(f.state === 'completed' && f.outputUrl)).map((f) => `#${f.frame} ${f.fileName} ${f.state}`);
  const files: string[] = new Array<string>(ready.length);
  let next = 0;
  const worker = async () => {
    while (next < ready.length) {
      const i = next++;
      const f = ready[i]!;
      const bytes = await api.download(f.outputUrl!);
      const path = join(outDir, outputName(f));
      await writeFile(path, bytes);
      files[i] = path;
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, ready.length) }, worker));
  return { files, missing };
}
