/**
 * A shot page's frames, read from the paged `GET /v1/shots/{id}/frames`: the strip (a page at a
 * time, all frames, one state, or those shot QA flagged), the flipbook's colour frames (which
 * carry the QA scores the sparkline draws) and the frame under review. Live snapshots fold states and
 * sampler steps in; only frames that gained something a snapshot cannot carry — a colour URL,
 * an error — are fetched, from the first of them on, so a 2000-frame shot costs a few frames per
 * second, not 2000.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, FRAME_PAGE_LIMIT, type FramesRequest, type FrameState, type FrameView, type LiveShot } from './api.ts';
import { dropUncompleted, keepUrlsOf, lacksDetails, mergeColour, mergeFrames, newlyCompleted, replaceFrames } from './merge.ts';

/** Frames the strip adds per page (each shows two thumbnails). */
export const STRIP_PAGE = 60;

/** At least this long between two fetches of frame details. */
const DETAILS_GAP_MS = 500;

/** What the strip lists: all frames, one state, the frames waiting for review, or all flagged ones. */
export type FrameFilter = FrameState | 'all' | 'needs-review' | 'flagged';

export interface ShotFrames {
  /** The strip's frames, in frame order. */
  strip: readonly FrameView[];
  /** More frames of the filter follow the strip's. */
  more: boolean;
  filter: FrameFilter;
  /** Completed frames with their colour URLs and QA, in frame order: what the flipbook plays and the sparkline draws. */
  colour: readonly FrameView[];
  /** The frame under review and the one before it (for its previous output), as last read. */
  focused: readonly FrameView[];
  /** The last failed read; null after a good one. */
  error: unknown;
  setFilter(filter: FrameFilter): void;
  loadMore(): void;
  /** Reads frame `frame` (and the one before it) for review, and keeps it live; undefined lets go. */
  focus(frame: number | undefined): void;
  /** Takes in a frame the API answered with (an approval), wherever the page holds it. */
  put(frame: FrameView): void;
  /** Folds in the shot's live snapshot, and fetches what it shows to have changed. */
  live(shot: LiveShot | undefined): void;
  /** Reads the strip and the colour frames again (`freshUrls`: new signatures, e.g. after expiry). */
  reload(opts?: { freshUrls?: boolean }): void;
}

/** The frames query of a filter (needs review: `review=needed`; flagged: `flagged=true`). */
export function queryOf(filter: FrameFilter): Omit<FramesRequest, 'cursor' | 'limit'> {
  if (filter === 'all') return {};
  if (filter === 'needs-review') return { review: 'needed' };
  if (filter === 'flagged') return { flagged: true };
  return { state: [filter] };
}

/** Frames of the shot after `cursor` (matching `q`), page by page, until `enough` says so or the pages end. */
async function readFrames(
  id: string,
  q: Omit<FramesRequest, 'limit'> & { limit: number },
  enough: (frames: readonly FrameView[]) => boolean,
): Promise<{ frames: FrameView[]; next: string | null }> {
  const frames: FrameView[] = [];
  const { cursor, ...rest } = q;
  let next: string | null = cursor ?? null;
  do {
    const page = await api.frames(id, { ...rest, ...(next ? { cursor: next } : {}) });
    frames.push(...page.frames);
    next = page.next;
  } while (next && !enough(frames));
  return { frames, next };
}

interface Strip {
  frames: readonly FrameView[];
  next: string | null;
  filter: FrameFilter;
}

const EMPTY_STRIP: Strip = { frames: [], next: null, filter: 'all' };

export function useShotFrames(id: string): ShotFrames {
  const [strip, setStrip] = useState<Strip>(EMPTY_STRIP);
  const [colour, setColour] = useState<readonly FrameView[]>([]);
  const [focused, setFocused] = useState<readonly FrameView[]>([]);
  const [error, setError] = useState<unknown>(null);
  // The refs are the truth the reads work from; each change goes to both at once, so a read that
  // follows another sees its result before React renders it.
  const stripRef = useRef(strip);
  const colourRef = useRef(colour);
  const focusedRef = useRef(focused);
  const commitStrip = useCallback((next: Strip) => {
    if (next === stripRef.current) return;
    stripRef.current = next;
    setStrip(next);
  }, []);
  const commitColour = useCallback((next: readonly FrameView[]) => {
    if (next === colourRef.current) return;
    colourRef.current = next;
    setColour(next);
  }, []);
  const commitFocused = useCallback((next: readonly FrameView[]) => {
    if (next === focusedRef.current) return;
    focusedRef.current = next;
    setFocused(next);
  }, []);
  const lastLive = useRef<LiveShot | undefined>(undefined);
  /** The frame number under review. */
  const focusOn = useRef<number | undefined>(undefined);

  // Reads run one at a time, in order; a shot change makes the reads still queued for the old one no-ops.
  const queue = useRef<Promise<void>>(Promise.resolve());
  const generation = useRef(0);
  const enqueue = useCallback((op: (current: () => boolean) => Promise<void>) => {
    const g = generation.current;
    const current = () => g === generation.current;
    queue.current = queue.current
      .then(async () => {
        if (!current()) return;
        await op(current);
        if (current()) setError(null);
      })
      .catch((e: unknown) => {
        if (current()) setError(e);
      });
  }, []);

  const loadStrip = useCallback(
    (filter: FrameFilter, count: number, fresh: boolean) =>
      enqueue(async (current) => {
        const limit = Math.min(FRAME_PAGE_LIMIT.max, Math.max(count, STRIP_PAGE));
        const { frames, next } = await readFrames(id, { ...queryOf(filter), limit }, (fs) => fs.length >= count);
        const prev = stripRef.current;
        // Another filter chosen meanwhile: its own read follows.
        if (!current() || prev.filter !== filter) return;
        commitStrip({ frames: fresh ? frames : keepUrlsOf(prev.frames, frames), next, filter });
      }),
    [id, enqueue, commitStrip],
  );

  // A full read of the completed frames is the truth: a frame rendered again since drops out.
  const loadColour = useCallback(
    (fresh: boolean) =>
      enqueue(async (current) => {
        const { frames } = await readFrames(id, { state: ['completed'], limit: FRAME_PAGE_LIMIT.max }, () => false);
        if (current()) commitColour(mergeColour([], fresh ? frames : keepUrlsOf(colourRef.current, frames)));
      }),
    [id, enqueue, commitColour],
  );

  const loadFocus = useCallback(
    (frame: number, fresh: boolean) =>
      enqueue(async (current) => {
        // The frame and the one before it: one page from just before them.
        const page = await api.frames(id, { ...(frame > 2 ? { cursor: String(frame - 2) } : {}), limit: frame > 1 ? 2 : 1 });
        const frames = page.frames.filter((f) => f.frame === frame || f.frame === frame - 1);
        if (current() && focusOn.current === frame) commitFocused(fresh ? frames : keepUrlsOf(focusedRef.current, frames));
      }),
    [id, enqueue, commitFocused],
  );

  // What the latest snapshot shows the page lacks, fetched once per gap however many snapshots ask.
  const detailsPending = useRef(false);
  const fetchDetails = useCallback(() => {
    if (detailsPending.current) return;
    detailsPending.current = true;
    enqueue(async (current) => {
      detailsPending.current = false;
      const wanted = [
        ...newlyCompleted(lastLive.current, colourRef.current),
        ...stripRef.current.frames.filter(lacksDetails).map((f) => f.frame),
        ...focusedRef.current.filter(lacksDetails).map((f) => f.frame),
      ];
      if (wanted.length === 0) return;
      const first = Math.min(...wanted);
      const last = Math.max(...wanted);
      const { frames } = await readFrames(
        id,
        { state: ['completed', 'failed'], cursor: first > 1 ? String(first - 1) : undefined, limit: FRAME_PAGE_LIMIT.max },
        (fs) => (fs.at(-1)?.frame ?? 0) >= last,
      );
      if (!current()) return;
      commitStrip({ ...stripRef.current, frames: replaceFrames(stripRef.current.frames, frames) });
      commitColour(mergeColour(colourRef.current, frames));
      commitFocused(replaceFrames(focusedRef.current, frames));
      await new Promise((r) => setTimeout(r, DETAILS_GAP_MS));
    });
  }, [id, enqueue, commitStrip, commitColour, commitFocused]);

  useEffect(() => {
    generation.current++;
    lastLive.current = undefined;
    focusOn.current = undefined;
    commitStrip(EMPTY_STRIP);
    commitColour([]);
    commitFocused([]);
    setError(null);
    loadStrip('all', STRIP_PAGE, true);
    loadColour(true);
  }, [loadStrip, loadColour, commitStrip, commitColour, commitFocused]);

  return {
    strip: strip.frames,
    more: strip.next !== null,
    filter: strip.filter,
    colour,
    focused,
    error,
    setFilter: (filter) => {
      // The choice shows at once; the frames follow with the read.
      commitStrip({ ...stripRef.current, filter, next: null });
      loadStrip(filter, STRIP_PAGE, true);
    },
    loadMore: () =>
      enqueue(async (current) => {
        const { filter, next } = stripRef.current;
        if (!next) return;
        const page = await api.frames(id, { ...queryOf(filter), cursor: next, limit: STRIP_PAGE });
        const prev = stripRef.current;
        if (current() && prev.filter === filter && prev.next === next) commitStrip({ ...prev, frames: [...prev.frames, ...page.frames], next: page.next });
      }),
    focus: (frame) => {
      if (frame === focusOn.current) return;
      focusOn.current = frame;
      commitFocused([]);
      if (frame !== undefined) loadFocus(frame, true);
    },
    put: (frame) => {
      commitStrip({ ...stripRef.current, frames: replaceFrames(stripRef.current.frames, [frame]) });
      commitColour(mergeColour(colourRef.current, [frame]));
      commitFocused(replaceFrames(focusedRef.current, [frame]));
    },
    live: (shot) => {
      if (!shot || shot.id !== id) return;
      lastLive.current = shot;
      const frames = mergeFrames(stripRef.current.frames, shot);
      if (frames !== stripRef.current.frames) commitStrip({ ...stripRef.current, frames });
      commitColour(dropUncompleted(colourRef.current, shot));
      const focusedNow = mergeFrames(focusedRef.current, shot);
      commitFocused(focusedNow);
      if (newlyCompleted(shot, colourRef.current).length > 0 || frames.some(lacksDetails) || focusedNow.some(lacksDetails)) fetchDetails();
    },
    reload: (opts = {}) => {
      const { filter, frames } = stripRef.current;
      loadStrip(filter, frames.length, opts.freshUrls === true);
      loadColour(opts.freshUrls === true);
      if (focusOn.current !== undefined) loadFocus(focusOn.current, opts.freshUrls === true);
    },
  };
}
